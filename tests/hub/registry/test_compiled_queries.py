"""hub.registry.compiled_queries: a queryset compiled once gives the rows `.values()` gives, for new values."""

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from hub.registry.compiled_queries import UncompilableQuery, values_query
from hub.registry.models import Adapter
from hub.registry.resolution import resolve_adapter
from tests.factories import MembershipFactory, NamespaceFactory, UserFactory, valid_adapter

pytestmark = pytest.mark.django_db

COLUMNS = ("id", "name", "namespace__name", "config", "created_at", "download_count")


def adapters_of(values):
    condition = Q(namespace__name=values["namespace"]) if values["namespace"] else Q()
    return (
        Adapter.objects.filter(condition, download_count__gte=values["downloads"])
        .order_by("id")
        .values(*COLUMNS)
    )


def test_new_values_give_the_rows_values_gives():
    for namespace, downloads in (("ukp", 3), ("ukp", 7), ("nlp", 0), ("nlp", 5)):
        valid_adapter(namespace=NamespaceFactory(name=f"{namespace}{downloads}"), download_count=downloads)
    for namespace in ("ukp3", "ukp7", "nlp5", "nobody", ""):
        for downloads in (0, 4, 6, 100):
            values = {"namespace": namespace, "downloads": downloads}
            rows = values_query(("test adapters",), adapters_of, values)
            assert rows == list(adapters_of(values)), values
    # The JSON column is decoded, as `.values()` decodes it.
    assert isinstance(
        values_query(("test adapters",), adapters_of, {"namespace": "", "downloads": 0})[0]["config"], dict
    )


def test_an_empty_value_takes_its_own_branch():
    valid_adapter(namespace=NamespaceFactory(name="ukp"))
    valid_adapter(namespace=NamespaceFactory(name="nlp"))
    # Compiled first with a namespace: the empty one must not reuse that query with "" as the name.
    assert len(values_query(("test branch",), adapters_of, {"namespace": "ukp", "downloads": 0})) == 1
    assert len(values_query(("test branch",), adapters_of, {"namespace": "", "downloads": 0})) == 2


def test_a_value_the_orm_transforms_is_refused():
    def named_like(values):
        return Adapter.objects.filter(name__icontains=values["name"]).values("id")

    with pytest.raises(UncompilableQuery, match="name did not reach the SQL"):
        values_query(("test icontains",), named_like, {"name": "sst"})

    def ignoring(values):
        return Adapter.objects.values("id")

    with pytest.raises(UncompilableQuery, match="unused"):
        values_query(("test unused",), ignoring, {"unused": "x"})


def test_resolution_compiled_for_one_member_does_not_leak_to_another():
    org = NamespaceFactory(name="secret")
    valid_adapter(namespace=org, name="hidden", private=True)
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    MembershipFactory(namespace=org, user=alice)
    admin = UserFactory(username="root", is_superuser=True)
    assert resolve_adapter("secret/hidden", "bert-base-uncased", user=alice)["adapter"] == "secret/hidden"
    with pytest.raises(Exception, match="No valid adapter matches"):
        resolve_adapter("secret/hidden", "bert-base-uncased", user=bob)
    with pytest.raises(Exception, match="No valid adapter matches"):
        resolve_adapter("secret/hidden", "bert-base-uncased", user=None)
    assert resolve_adapter("secret/hidden", "bert-base-uncased", user=admin)["adapter"] == "secret/hidden"
    MembershipFactory(namespace=org, user=bob)
    assert resolve_adapter("secret/hidden", "bert-base-uncased", user=bob)["adapter"] == "secret/hidden"


def test_a_compiled_query_is_prepared_once_per_connection():
    # PostgreSQL then neither parses nor plans it again (hub.registry.compiled_queries._preparing_cursor).
    valid_adapter(namespace=NamespaceFactory(name="ukp"), download_count=5)

    def prepared_runs():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(generic_plans + custom_plans), 0) FROM pg_prepared_statements "
                "WHERE statement LIKE %s",
                ['%download_count" >= $%'],
            )
            return cursor.fetchone()[0]

    before = prepared_runs()
    for downloads in (0, 5, 6):
        values_query(("test prepared",), adapters_of, {"namespace": "ukp", "downloads": downloads})
    assert prepared_runs() - before == 3


def test_a_list_of_ids_is_substituted_item_by_item():
    adapters = [valid_adapter(namespace=NamespaceFactory(name=f"ns{number}")) for number in range(5)]
    ids = [adapter.pk for adapter in adapters]

    def by_id(values):
        return Adapter.objects.filter(pk__in=values["ids"]).order_by("id").values("id", "namespace__name")

    # The same length compiles once and takes new ids; another length is a query of its own.
    for chosen in (ids[:2], ids[3:], [ids[4], ids[0]], ids, [ids[1]], [ids[2], 10**9]):
        assert values_query(("test ids",), by_id, {"ids": chosen}) == list(by_id({"ids": chosen})), chosen
    with pytest.raises(UncompilableQuery):
        values_query(("test ids", "names"), lambda values: by_id({"ids": []}), {"ids": ["ukp"]})


def test_a_logged_compiled_query_shows_its_sql():
    # The query log (DEBUG, CaptureQueriesContext, the benchmark's --plans) needs SQL it can show and EXPLAIN.
    valid_adapter(namespace=NamespaceFactory(name="ukp"), download_count=5)
    with CaptureQueriesContext(connection) as queries:
        rows = values_query(("test logged",), adapters_of, {"namespace": "ukp", "downloads": 4})
    assert len(rows) == 1
    assert '"download_count" >= 4' in queries.captured_queries[-1]["sql"]
