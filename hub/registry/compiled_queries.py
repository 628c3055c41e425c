"""`.values()` querysets compiled to SQL once per process and run again with new values.

On the hot read paths (resolution, a version's download description) Django spends more time building and
compiling the same queryset than PostgreSQL spends running it: at a million adapters, resolution's three
queries ran in under a millisecond in the database and took about 6 ms of the web process to build and compile
(filters resolved through the model graph, the current-version subqueries built and quoted, every time).
`values_query` builds such a queryset once with stand-in values, keeps its SQL, and afterwards only
substitutes the real values into the parameter list and reads the rows through the compiled query's own
converters (JSON fields, dates), so the rows are the dicts `.values()` would give. On PostgreSQL the SQL is
also prepared once per connection (`_preparing_cursor`), so the database does not plan it again either.

The queryset is still written with the ORM, in one place (`build`), and the same code serves every caller.
What a caller must know: `key` names everything that changes the SQL besides the values (a branch in
`build`, the kind of user). An empty value (None, "", 0, []) is not substituted: `build` gets it as it is and
it becomes part of the key, since a filter on None compiles to `IS NULL` and code branches on an empty
string. A list of ints (`pk__in`) is substituted item by item; its length is part of the key, as the SQL
has one parameter an item. A value that the ORM transforms before it reaches the database (`icontains`
wraps it in `%`) cannot be substituted: compiling such a query raises `UncompilableQuery`, so a wrong use
fails in the first test that runs it, not with wrong rows.
"""

import itertools
import threading
from collections.abc import Callable, Mapping

from django.db import connections
from django.db.models import QuerySet


class UncompilableQuery(Exception):
    """A value given to `build` does not reach the SQL as one unchanged parameter."""


class _CompiledValuesQuery:
    def __init__(self, queryset: QuerySet, stand_ins: dict[str, object]):
        query = queryset.query
        self.using = queryset.db
        self.compiler = query.get_compiler(using=self.using)
        self.sql, parameters = self.compiler.as_sql()
        # The same names, in the same order, as Django's ValuesIterable gives a row's values.
        if query.selected:
            self.names = list(query.selected)
        else:
            self.names = [*query.extra_select, *query.values_select, *query.annotation_select]
        # Where each stand-in goes: (name, None) for a value, (name, index) for an item of a list.
        places = {}
        for name, value in stand_ins.items():
            if isinstance(value, list):
                places.update((item, (name, index)) for index, item in enumerate(value))
            else:
                places[value] = (name, None)
        # Each parameter: ("value", (name, index)) to substitute, or ("constant", value) that the query holds.
        self.parameters = []
        found = set()
        for parameter in parameters:
            place = places.get(parameter) if isinstance(parameter, int | str) else None
            if place is None:
                self.parameters.append(("constant", parameter))
            else:
                self.parameters.append(("value", place))
                found.add(place)
        missing = {name for name, index in places.values() if (name, index) not in found}
        if missing:
            raise UncompilableQuery(
                f"{', '.join(sorted(missing))} did not reach the SQL as parameters of their own "
                "(a transformed lookup, or a value used only in Python): leave them out of `values`."
            )
        for value in stand_ins.values():
            if isinstance(value, str) and value in self.sql:
                raise UncompilableQuery(
                    f"{value!r} was written into the SQL text rather than passed as a parameter."
                )

    def run(self, values: Mapping[str, object]) -> list[dict]:
        parameters = [
            (values[item[0]] if item[1] is None else values[item[0]][item[1]]) if kind == "value" else item
            for kind, item in self.parameters
        ]
        with _preparing_cursor(connections[self.using]) as cursor:
            cursor.execute(self.sql, parameters)
            fetched = cursor.fetchall()
        rows = self.compiler.results_iter(results=[fetched])
        return [dict(zip(self.names, row, strict=True)) for row in rows]


def _preparing_cursor(connection):
    """The cursor a compiled query runs on. On PostgreSQL it binds its parameters on the server, so psycopg
    prepares the statement in each connection (`prepare_threshold` in hub.settings: from its first run) and later
    runs skip PostgreSQL's parsing and planning. Planning resolution's candidates (four subqueries, weighed
    against every index of adapters) took 1.5 ms at a million adapters, running them 0.1 ms. Django's own
    cursors bind on the client and never prepare. The cursor is wrapped as Django wraps its own (errors as
    django.db errors, execute wrappers). While queries are logged (DEBUG, tests that capture them, the
    benchmark's --plans) a compiled query runs on Django's own cursor: psycopg keeps no SQL text for a prepared
    run, so the log would hold None where it needs SQL it can show or EXPLAIN."""
    if connection.vendor != "postgresql" or connection.queries_logged:
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = ServerBindingCursor(connection.connection)
    return connection.make_cursor(cursor)


_compiled: dict[tuple, _CompiledValuesQuery] = {}
_compiling = threading.Lock()
_stand_in_numbers = itertools.count(1)


def _stand_in(name: str, value: object) -> object:
    """A value of the same type as `value` that nothing else in a query can equal (a list: one an item)."""
    if isinstance(value, list):
        if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            raise UncompilableQuery(
                f"{name} holds other things than ints; only lists of ints are substituted."
            )
        return [_stand_in(name, item) for item in value]
    number = next(_stand_in_numbers)
    if isinstance(value, bool):
        raise UncompilableQuery(f"{name} is a bool: make it part of the key, not a value.")
    if isinstance(value, int):
        # Within the range of every integer column, positive ones included: Django turns a lookup past a
        # column's range into "nothing" or "everything" without a parameter.
        return 1_900_000_000 + number
    if isinstance(value, str):
        return f"\x1fstand-in {number} for {name}\x1f"
    raise UncompilableQuery(
        f"{name} is a {type(value).__name__}; only str and int values (and lists of ints) are substituted."
    )


def values_query(key: tuple, build: Callable[[Mapping[str, object]], QuerySet], values: Mapping[str, object]):
    """The rows (dicts) of the `.values()` queryset `build(values)`, compiled once per `key` (and per shape of
    `values`) in this process. Empty values (None, "", 0, []) are handed to `build` as they are and are part
    of the key; the others (str, int, lists of ints) are substituted, a list's length being part of the key."""
    empty = {name: value for name, value in values.items() if not value}
    full_key = (
        key,
        tuple(sorted((name, repr(value)) for name, value in empty.items())),
        tuple(
            sorted((name, len(value) if isinstance(value, list) else None) for name, value in values.items())
        ),
    )
    compiled = _compiled.get(full_key)
    if compiled is None:
        with _compiling:
            stand_ins = {name: _stand_in(name, value) for name, value in values.items() if name not in empty}
            compiled = _CompiledValuesQuery(build({**empty, **stand_ins}), stand_ins)
            _compiled[full_key] = compiled
    return compiled.run(values)
