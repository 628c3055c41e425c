"""How many rows a list has, without reading them all.

Counting every row of a list is the one part of a list page that grows with the catalogue: at a million
adapters the default list (and a search for a common word) counts hundreds of thousands of rows on every cache
miss. A list is counted exactly up to EXACT_COUNT_LIMIT rows (a count of at most that many rows, which stops
there); a longer list gets PostgreSQL's planner estimate of its rows (EXPLAIN, which reads no rows), never less
than the limit, and is shown as "about N". Elsewhere (the embedded SQLite of `make run`, small by nature) a
longer list is counted exactly.
"""

import json

from django.db import connections
from django.db.models import QuerySet

# Counting a row reads it from the table (its visibility and status), about 15 us on a loaded machine: 200 rows
# cost about 3 ms, 1,000 about 16 ms at a million adapters.
EXACT_COUNT_LIMIT = 200


def estimated_rows(queryset: QuerySet) -> int:
    """The planner's estimate of the rows `queryset` returns (PostgreSQL; no row is read)."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def list_count(queryset: QuerySet, at_least: int = 0) -> tuple[int, bool]:
    """(rows, exact): the exact number of rows of `queryset` up to EXACT_COUNT_LIMIT, else an estimate above
    it (see the module). A caller that knows the list has `at_least` rows, more than EXACT_COUNT_LIMIT (it
    read them), gets the estimate at once, never less than that."""
    if queryset.query.is_empty():
        return 0, True
    ids = queryset.order_by().values("pk")
    if at_least > EXACT_COUNT_LIMIT and connections[queryset.db].vendor == "postgresql":
        return max(estimated_rows(ids), at_least), False
    # In the lists' order, so that the bounded count reads the index a list is read from (`(task, base_model,
    # -download_count)`, ...), 2 ms at a million adapters, never the table from its start (which finds few rows
    # of a narrow filter) nor a bitmap of every match.
    rows = ids.order_by("-download_count")[: EXACT_COUNT_LIMIT + 1].count()
    if rows <= EXACT_COUNT_LIMIT:
        return rows, True
    if connections[queryset.db].vendor != "postgresql":
        return ids.count(), True
    return max(estimated_rows(ids), EXACT_COUNT_LIMIT + 1), False
