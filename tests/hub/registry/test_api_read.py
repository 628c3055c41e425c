"""Adapter list and search, architectures, taxonomy, throttling, the OpenAPI schema and Swagger UI."""

import json

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.throttling import AnonRateThrottle

from adapters_core.configuration import PfeifferConfig, config_hash
from hub.registry.api.serializers import AdapterListSerializer
from hub.registry.filtersets import MAX_LIST_OFFSET, MAX_PAGE_SIZE, SORT_ORDERS
from hub.registry.models import Adapter, Architecture
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    BaseModelFactory,
    NamespaceFactory,
    SubtaskFactory,
    TaskFactory,
    UserFactory,
    valid_adapter,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    ukp = NamespaceFactory(name="ukp")
    nli = TaskFactory(name="nli")
    de = TaskFactory(name="de", type="text_lang")
    adapters = {
        "sst": valid_adapter(namespace=ukp, name="bert-sst2", download_count=5, description="movie reviews"),
        "rte": valid_adapter(namespace=ukp, name="bert-rte", task=nli, subtask=SubtaskFactory(task=nli, name="rte"), download_count=50),
        "de": valid_adapter(
            name="roberta-de", task=de, subtask=SubtaskFactory(task=de, name="wiki", language="de"), type="text_lang",
            base_model=BaseModelFactory(model_name="roberta-base"), architecture_name="pfeiffer+inv",
        ),
    }  # fmt: skip
    return adapters


def names(response):
    return [row["adapter"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, ["ukp/bert-rte", "ukp/bert-sst2", "*/roberta-de"]),
        ({"task": "nli"}, ["ukp/bert-rte"]),
        ({"subtask": "sst-2"}, ["ukp/bert-sst2"]),
        ({"type": "text_lang"}, ["*/roberta-de"]),
        ({"language": "de"}, ["*/roberta-de"]),
        ({"model_name": "roberta-base"}, ["*/roberta-de"]),
        ({"model_type": "bert"}, ["ukp/bert-rte", "ukp/bert-sst2"]),
        ({"architecture": "pfeiffer+inv"}, ["*/roberta-de"]),
        ({"namespace": "ukp", "sort": "name"}, ["ukp/bert-rte", "ukp/bert-sst2"]),
        ({"q": "movie"}, ["ukp/bert-sst2"]),
        ({"q": "sentiment bert"}, ["ukp/bert-sst2"]),
        ({"q": "rte"}, ["ukp/bert-rte"]),
    ],
)
def test_list_filters(api, catalogue, params, expected):
    response = api.get("/api/v1/adapters/", params)
    assert response.status_code == 200
    got = names(response)
    assert len(got) == len(expected)
    for name, pattern in zip(got, expected, strict=True):
        assert name == pattern or (pattern.startswith("*/") and name.endswith(pattern[1:]))


def test_list_filters_by_status_as_the_web_list_does(api, catalogue):
    # Adapters without a valid version are listed to their namespace's members (here: an administrator).
    api.force_authenticate(UserFactory(username="root", is_superuser=True))
    pending_only = AdapterVersionFactory(adapter=AdapterFactory(name="bert-new"), status="pending").adapter
    AdapterVersionFactory(adapter=catalogue["rte"], version="2", status="invalid")  # rte still resolves
    assert names(api.get("/api/v1/adapters/", {"status": "pending"})) == [pending_only.full_name]
    assert "ukp/bert-rte" in names(api.get("/api/v1/adapters/", {"status": "valid"}))
    assert names(api.get("/api/v1/adapters/", {"status": "invalid"})) == []
    response = api.get("/api/v1/adapters/", {"status": "broken"})
    assert response.status_code == 400 and response.json()["field"] == "status"


def test_list_rows_and_sorting(api, catalogue):
    row = api.get("/api/v1/adapters/", {"subtask": "sst-2"}).json()["results"][0]
    assert row["identifier"] == "sentiment/sst-2@ukp"
    assert row["latest_version"] == "1" and row["model_name"] == "bert-base-uncased"
    assert row["url"] == "http://testserver/api/v1/adapters/ukp/bert-sst2/"
    AdapterVersionFactory(
        adapter=catalogue["sst"], version="2"
    )  # touches nothing: updated_at is the adapter's
    catalogue["sst"].refresh_from_db()  # its status column changed since it was created
    catalogue["sst"].save()
    assert names(api.get("/api/v1/adapters/", {"sort": "recent"}))[0] == "ukp/bert-sst2"
    assert api.get("/api/v1/adapters/", {"sort": "bogus"}).status_code == 400


def test_list_rows_are_what_the_list_serializer_describes(api, catalogue):
    """The list answers its rows from `.values()` (hub.registry.api.list_rows); the same adapters through
    AdapterListSerializer, which describes a row in the API schema, give the same JSON, on a first page and on
    a later one."""
    for index in range(203):
        AdapterFactory(name=f"bulk-{index:03}", status="valid", download_count=index)
    Adapter.objects.filter(name="bulk-202").update(deprecated_message="Trained on the test set.")
    request = RequestFactory().get("/api/v1/adapters/")
    expected = AdapterListSerializer(
        Adapter.objects.listed_to(None).list_rows().order_by(*SORT_ORDERS["downloads"]),
        many=True,
        context={"request": request},
    ).data
    expected = json.loads(JSONRenderer().render(expected))
    first = api.get("/api/v1/adapters/", {"page_size": 100}).json()["results"]
    late = api.get("/api/v1/adapters/", {"page_size": 100, "page": 3}).json()["results"]
    assert first == expected[:100]
    assert late == expected[200:300] and late
    assert first[0]["adapter"].endswith("/bulk-202")


@pytest.mark.parametrize("page_size", [2, 40])
def test_list_uses_at_most_three_queries_whatever_the_page_size(
    api, page_size, django_assert_max_num_queries
):
    for index in range(40):
        AdapterVersionFactory(adapter=AdapterFactory(name=f"bulk-{index}"))
    with django_assert_max_num_queries(3):
        response = api.get("/api/v1/adapters/", {"page_size": page_size, "q": "bulk"})
    assert response.status_code == 200
    assert response.json()["count"] == 40 and len(response.json()["results"]) == page_size


def test_adapter_detail_lists_versions(api, catalogue):
    body = api.get("/api/v1/adapters/ukp/bert-sst2/").json()
    assert body["config_hash"] == config_hash(PfeifferConfig())
    assert [v["version"] for v in body["versions"]] == ["1"]
    assert body["versions"][0]["url"].endswith("/api/v1/adapters/ukp/bert-sst2/versions/1/")
    assert api.get("/api/v1/adapters/ukp/none/").status_code == 404


def test_architectures_list_detail_and_overrides(api):
    listing = api.get("/api/v1/architectures/").json()
    assert {"pfeiffer", "houlsby", "pfeiffer+inv", "houlsby+inv", "parallel"} <= {a["name"] for a in listing}
    body = api.get("/api/v1/architectures/pfeiffer/").json()
    assert body["config"] == PfeifferConfig().to_dict()
    assert body["config_hash"] == config_hash(PfeifferConfig())
    changed = api.get(
        "/api/v1/architectures/pfeiffer/", {"reduction_factor": "12", "leave_out": "[0, 1]"}
    ).json()
    assert changed["config"]["reduction_factor"] == 12 and changed["config"]["leave_out"] == [0, 1]
    assert changed["config_hash"] == config_hash(PfeifferConfig(reduction_factor=12, leave_out=[0, 1]))
    assert api.get("/api/v1/architectures/pfeiffer+inv/").json()["config"]["inv_adapter"] == "nice"
    bad = api.get("/api/v1/architectures/pfeiffer/", {"reduction_factr": "2"})
    assert bad.status_code == 400 and "reduction_factor" in bad.json()["detail"]
    missing = api.get("/api/v1/architectures/pfeifer/")
    assert missing.status_code == 404 and "pfeiffer" in missing.json()["suggestions"]


def test_register_architecture(api, alice_api, read_token):
    config = PfeifferConfig(reduction_factor=7).to_dict()
    assert (
        api.post("/api/v1/architectures/", {"name": "mine", "config": config}, format="json").status_code
        == 401
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {read_token.raw}")
    assert (
        api.post("/api/v1/architectures/", {"name": "mine", "config": config}, format="json").status_code
        == 403
    )
    created = alice_api.post("/api/v1/architectures/", {"name": "mine", "config": config}, format="json")
    assert created.status_code == 201, created.json()
    assert Architecture.objects.get(name="mine").config_hash == config_hash(
        PfeifferConfig(reduction_factor=7)
    )
    assert (
        alice_api.post(
            "/api/v1/architectures/", {"name": "mine", "config": config}, format="json"
        ).status_code
        == 200
    )
    other = alice_api.post(
        "/api/v1/architectures/", {"name": "mine", "config": PfeifferConfig().to_dict()}, format="json"
    )
    assert other.status_code == 409 and "immutable" in other.json()["detail"]
    assert (
        alice_api.post(
            "/api/v1/architectures/", {"name": "pfeiffer", "config": config}, format="json"
        ).status_code
        == 409
    )
    bad = alice_api.post(
        "/api/v1/architectures/", {"name": "worse", "config": {"reduction_factor": "x"}}, format="json"
    )
    assert bad.status_code == 400
    assert (
        api.get("/api/v1/architectures/mine/", {"reduction_factor": "3"}).json()["config"]["reduction_factor"]
        == 3
    )


def test_taxonomy_models_and_me(api, alice_api):
    tasks = {task["name"]: task for task in api.get("/api/v1/tasks/").json()}
    assert "sst-2" in [subtask["name"] for subtask in tasks["sentiment"]["subtasks"]]
    assert "bert-base-uncased" in [model["model_name"] for model in api.get("/api/v1/models/").json()]
    me = alice_api.get("/api/v1/me/").json()
    assert me["username"] == "alice" and me["scope"] == "write"
    assert me["namespaces"] == [{"name": "alice", "role": "owner"}]
    assert api.get("/api/v1/me/").status_code == 401


def test_throttling_answers_429_with_retry_after(api, alice, monkeypatch):
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute", "user": "1000/minute"})
    statuses = [api.get("/api/v1/architectures/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = api.get("/api/v1/architectures/")
    assert int(throttled["Retry-After"]) > 0
    assert "throttled" in throttled.json()["detail"].lower()
    # An authenticated client has its own, separate budget.
    token = ApiTokenFactory(user=alice)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    assert api.get("/api/v1/architectures/").status_code == 200


def test_schema_and_offline_swagger_ui(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in [
        "/api/v1/resolve/",
        "/api/v1/architectures/{name}/",
        "/api/v1/adapters/{namespace}/{name}/versions/",
    ]:
        assert path in paths
    ui = client.get("/api/docs/")
    assert ui.status_code == 200
    html = ui.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_list_and_detail_name_the_same_current_version(api):
    """`latest_version` follows the query layer's current-version rule in the list and in the detail: the
    default version when it is valid, else the newest valid one."""
    adapter = AdapterFactory(name="two-versions")
    first = AdapterVersionFactory(adapter=adapter, version="1")
    AdapterVersionFactory(adapter=adapter, version="2")
    AdapterVersionFactory(adapter=adapter, version="3", status="invalid")

    def shown():
        row = api.get("/api/v1/adapters/", {"q": "two-versions"}).json()["results"][0]
        detail = api.get(f"/api/v1/adapters/{adapter.full_name}/").json()
        return row["latest_version"], detail["latest_version"]

    assert shown() == ("2", "2")
    adapter.refresh_from_db()  # its status column changed since it was created
    adapter.default_version = first
    adapter.save()
    assert shown() == ("1", "1")


# --------------------------------------------------------------------------------------------------
# Errors of the list's query parameters
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("type=AAA", "type", "AAA is not one of the accepted values: text_task, text_lang."),
        ("sort=zzz", "sort", "zzz is not one of the accepted values: relevance, downloads, recent, name."),
        ("status=x", "status", "x is not one of the accepted values: pending,"),
        ("method=y", "method", "y is not one of the accepted values: bottleneck,"),
        ("page=abc", "page", "page must be a whole number from 1"),
        ("page=0", "page", "page must be a whole number from 1"),
        ("page=-1", "page", "page must be a whole number from 1"),
        ("page_size=abc", "page_size", "page_size must be a whole number from 1"),
        ("page_size=0", "page_size", "page_size must be a whole number from 1"),
    ],
)
def test_a_bad_list_parameter_is_a_400_in_the_api_error_format(api, catalogue, query, field, message):
    response = api.get(f"/api/v1/adapters/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert message in body["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/adapters/?page_size=5&page_size=500",
        "/api/v1/adapters/?page_size=500&page_size=5",
        "/api/v1/adapters/?page=1&page=2",
        "/api/v1/adapters/?task=nli&task=sentiment",
        "/api/v1/adapters/?q=bert&q=rte",
        "/api/v1/architectures/pfeiffer/?reduction_factor=2&reduction_factor=4",
        "/api/v1/resolve/?identifier=sentiment/sst-2&model_name=bert-base-uncased&model_name=roberta-base",
    ],
)
def test_a_repeated_query_parameter_is_refused(api, catalogue, url):
    response = api.get(url)
    assert response.status_code == 400
    name = response.json()["field"]
    assert f"The query parameter {name!r} is given 2 times; give it once." == response.json()["detail"]


def test_a_page_past_the_end_is_a_404_that_says_so(api, catalogue):
    response = api.get("/api/v1/adapters/?page=9")
    assert response.status_code == 404
    assert response.json()["detail"] == "Page 9 is past the end of the list."


def test_the_schema_bounds_the_page_parameters(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/adapters/"]["get"]["parameters"]}
    assert (parameters["page_size"]["minimum"], parameters["page_size"]["maximum"]) == (1, MAX_PAGE_SIZE)
    assert (parameters["page"]["minimum"], parameters["page"]["maximum"]) == (1, MAX_LIST_OFFSET)


def test_name_sort_orders_by_the_adapter_name_and_breaks_ties_on_the_namespace_id(api, client):
    """`sort=name` is the adapter's name; among adapters of the same name the older namespace comes first
    (its id, a column the `(name, namespace)` index holds), not the namespace's name."""
    zeta = NamespaceFactory(name="zeta")
    acme = NamespaceFactory(name="acme")
    for namespace, name in ((acme, "beta"), (acme, "alpha"), (zeta, "alpha"), (zeta, "gamma")):
        valid_adapter(namespace=namespace, name=name)
    expected = ["zeta/alpha", "acme/alpha", "acme/beta", "zeta/gamma"]
    assert names(api.get("/api/v1/adapters/", {"sort": "name"})) == expected
    page = client.get("/adapters/", {"sort": "name"}).content.decode()
    positions = [page.index(f'href="/adapters/{full_name}/"') for full_name in expected]
    assert positions == sorted(positions)  # the web list in the same order
    # Within one namespace the name alone orders it.
    assert names(api.get("/api/v1/adapters/", {"sort": "name", "namespace": "acme"})) == expected[1:3]


def test_downloads_sort_breaks_ties_as_the_name_sort_does_without_joining_namespaces(api, client):
    """Equal download counts come in the order of `sort=name` (the adapter's name, then the older namespace):
    columns of adapters, so a page's ids are read without joining the namespaces (a deep page of a large filter
    hashed every namespace to sort by their names)."""
    zeta = NamespaceFactory(name="zeta")
    acme = NamespaceFactory(name="acme")
    for namespace, name, downloads in (
        (acme, "beta", 5),
        (acme, "alpha", 5),
        (zeta, "alpha", 5),
        (zeta, "gamma", 9),
    ):
        valid_adapter(namespace=namespace, name=name, download_count=downloads)
    expected = ["zeta/gamma", "zeta/alpha", "acme/alpha", "acme/beta"]
    assert names(api.get("/api/v1/adapters/", {"sort": "downloads"})) == expected
    page = client.get("/adapters/", {"sort": "downloads"}).content.decode()
    positions = [page.index(f'href="/adapters/{full_name}/"') for full_name in expected]
    assert positions == sorted(positions)  # the web list in the same order
    with CaptureQueriesContext(connection) as queries:
        second = api.get("/api/v1/adapters/", {"sort": "downloads", "page": 2, "page_size": 1})
    assert names(second) == expected[1:2]
    page_ids = [query["sql"] for query in queries.captured_queries if "OFFSET" in query["sql"]]
    assert page_ids, "no query read the page's ids"
    assert all("registry_namespace" not in sql for sql in page_ids), page_ids


def test_list_filters_by_names_through_their_ids(api, catalogue):
    """Task, base model and namespace names are read as ids before the list query; a subtask name shared by
    several tasks matches the adapters of each; a name nobody has matches nothing."""
    fr = TaskFactory(name="fr", type="text_lang")
    french = valid_adapter(
        name="roberta-fr",
        task=fr,
        subtask=SubtaskFactory(task=fr, name="wiki", language="fr"),
        type="text_lang",
    )
    rows = api.get("/api/v1/adapters/", {"subtask": "wiki", "sort": "name"}).json()
    assert sorted(row["adapter"] for row in rows["results"]) == sorted(
        [catalogue["de"].full_name, french.full_name]
    )
    for params in ({"task": "nope"}, {"model_name": "nope"}, {"namespace": "nope"}, {"subtask": "nope"}):
        answer = api.get("/api/v1/adapters/", params).json()
        assert (answer["count"], answer["results"]) == (0, []), params
    in_namespace = api.get("/api/v1/adapters/", {"namespace": "ukp", "sort": "downloads"}).json()["results"]
    assert [row["adapter"] for row in in_namespace] == ["ukp/bert-rte", "ukp/bert-sst2"]
