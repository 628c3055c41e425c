"""Every input gets a 4xx, never a 500 (issue 16, findings 4, 5 and 12): control characters in a path, a query,
a header or a form field; numbers past 64 bits; JSON nested 2,000 deep; and errors of the JSON API in JSON."""

import io
import json
from urllib.parse import quote

import pytest
from django.test import Client

from hub.compat.huggingface.errors import HubRouteError
from hub.registry.models import Architecture
from tests.factories import NamespaceFactory, valid_adapter, weights_bytes

pytestmark = pytest.mark.django_db

CONTROL_CHARACTERS = ["%00", "%01", "%0A", "%7F"]

# (route with {x} where the bad text goes, answered as JSON?)
ROUTES = [
    ("/api/v1/resolve/?identifier={x}&model_name=bert-base-uncased", True),
    ("/api/v1/resolve/?identifier=sentiment/sst-2&model_name={x}", True),
    ("/api/v1/resolve/?identifier=sentiment/sst-2&model_name=bert-base-uncased&config={x}", True),
    ("/api/v1/resolve/?identifier=sentiment/sst-2&model_name=bert-base-uncased&version={x}", True),
    ("/api/v1/architectures/{x}/", True),
    ("/api/v1/architectures/pfeiffer/?reduction_factor={x}", True),
    ("/api/v1/architectures/pfeiffer/?{x}=1", True),
    ("/api/v1/adapters/?q={x}", True),
    ("/api/v1/adapters/?task={x}", True),
    ("/api/v1/adapters/{x}/a/", True),
    ("/api/v1/adapters/ukp/{x}/", True),
    ("/api/v1/adapters/ukp/bert-sst2/versions/{x}/", True),
    ("/api/v1/adapters/ukp/bert-sst2/versions/1/files/{x}", True),
    ("/api/v1/adapters/ukp/{x}/versions/1/files/adapter.safetensors", True),
    ("/api/models?search={x}", True),
    ("/api/models?author={x}", True),
    ("/api/models?filter={x}", True),
    ("/api/models/ukp/bert-sst2/revision/{x}", True),
    ("/ukp/bert-sst2/resolve/{x}/adapter_config.json", True),
    ("/ukp/bert-sst2/resolve/main/{x}", True),
    ("/dist/v2/index/{x}.json", True),
    ("/dist/v2/adapters/ukp/{x}.json", True),
    ("/dist/v2/archives/{x}.zip", True),
    ("/adapters/{x}/", False),
    ("/adapters/ukp/{x}/", False),
    ("/adapters/?q={x}", False),
    ("/architectures/{x}/", False),
    ("/explore/?q={x}", False),
]


@pytest.fixture
def catalogue():
    valid_adapter(namespace=NamespaceFactory(name="ukp"), name="bert-sst2")


@pytest.fixture
def client():
    return Client(raise_request_exception=False, HTTP_ACCEPT="text/html,*/*")


def assert_clear_400(response, as_json):
    assert response.status_code == 400, response.content[:300]
    if as_json:
        assert response["Content-Type"] == "application/json"
        assert "control character" in response.json()["detail"]
    else:
        assert response["Content-Type"].startswith("text/html")
        assert b"control character" in response.content


@pytest.mark.parametrize("character", CONTROL_CHARACTERS)
@pytest.mark.parametrize("route, as_json", ROUTES)
def test_a_control_character_in_the_path_or_query_is_a_clear_400(
    client, catalogue, route, as_json, character
):
    if character == "%0A" and "={x}" in route:
        pytest.skip("a line break is whitespace in a query value (JSON configs); see the test below")
    assert_clear_400(client.get(route.format(x=f"a{character}b")), as_json)


def test_a_query_value_may_hold_line_breaks(client, catalogue):
    response = client.get("/api/v1/architectures/pfeiffer/?leave_out=%5B0,%0A%091%5D")
    assert response.status_code == 200
    assert response.json()["config"]["leave_out"] == [0, 1]


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f"])
@pytest.mark.parametrize(
    "route, as_json",
    [
        ("/api/v1/adapters/ukp/bert-sst2/", True),
        ("/api/v1/adapters/ukp/bert-sst2/versions/1/files/adapter.safetensors", True),
        ("/ukp/bert-sst2/resolve/main/adapter_config.json", True),
        ("/adapters/ukp/bert-sst2/", False),
    ],
)
@pytest.mark.parametrize(
    "header", ["HTTP_AUTHORIZATION", "HTTP_IF_NONE_MATCH", "HTTP_RANGE", "HTTP_X_ANYTHING"]
)
def test_a_control_character_in_a_header_is_a_clear_400(client, catalogue, route, as_json, header, character):
    value = f"Bearer a{character}b" if header == "HTTP_AUTHORIZATION" else f"a{character}b"
    assert_clear_400(client.get(route, **{header: value}), as_json)


def test_the_hugging_face_error_header_holds_no_control_character():
    # The gate keeps control characters out of requests; the header is safe all the same, whatever the message.
    response = HubRouteError(404, "RevisionNotFound", "Invalid rev id: a\nb\x00c\td.").response()
    assert response["X-Error-Message"] == "Invalid rev id: a b c d."
    assert json.loads(response.content)["error"] == "Invalid rev id: a\nb\x00c\td."


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x7f"])
@pytest.mark.parametrize("field", ["description", "version", "task", "model_name"])
def test_a_control_character_in_an_upload_form_field_is_a_clear_400(alice_api, field, character):
    config = {"name": "x", "model_name": "bert-base-uncased", "config": {"architecture": "bottleneck"}}
    files = [io.BytesIO(json.dumps(config).encode()), io.BytesIO(weights_bytes())]
    files[0].name, files[1].name = "adapter_config.json", "adapter.safetensors"
    form = {"files": files, "task": "sentiment", field: f"a{character}b"}
    response = alice_api.post("/api/v1/adapters/alice/x/versions/", form, format="multipart")
    assert response.status_code == 400
    assert f"form field '{field}' contains the control character" in response.json()["detail"]


def test_a_control_character_in_a_json_body_is_a_clear_400(alice_api):
    response = alice_api.post(
        "/api/v1/architectures/", {"name": "a\x00b", "config": {"architecture": "bottleneck"}}, format="json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("config", ['"x"', "5", "[]", "[null, null]", "true", '"{}"'])
@pytest.mark.parametrize("as_json", [True, False])
def test_an_architecture_config_that_is_not_an_object_is_a_clear_400(alice_api, config, as_json):
    if as_json:
        body = '{"name": "not-an-object", "config": ' + config + "}"
        response = alice_api.post("/api/v1/architectures/", body, content_type="application/json")
    else:  # a form field holds the config as JSON text
        response = alice_api.post("/api/v1/architectures/", {"name": "not-an-object", "config": config})
    assert response.status_code == 400
    assert response.json()["field"] == "config"
    assert response.json()["detail"].startswith(
        'config: The config must be a JSON object, e.g. {"architecture"'
    )
    assert not Architecture.objects.filter(name="not-an-object").exists()


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_an_upload_without_a_multipart_form_is_a_clear_400(alice_api, content_type):
    if content_type is None:
        response = alice_api.post("/api/v1/adapters/alice/x/versions/")
    else:
        response = alice_api.post("/api/v1/adapters/alice/x/versions/", "{}", content_type=content_type)
    assert response.status_code == 400
    assert "An upload is a multipart/form-data form" in response.json()["detail"]


# --- Numbers and depth (finding 5) ------------------------------------------------------------------------

DIGITS_3000 = "9" * 3000
DIGITS_5000 = "9" * 5000
NESTED_LIST = "[" * 2000 + "]" * 2000
NESTED_OBJECT = '{"a":' * 2000 + "1" + "}" * 2000
# Deep enough to be refused, short enough for a URL (URLs over 8,000 characters get a 414 first).
NESTED_OBJECT_IN_URL = '{"a":' * 100 + "1" + "}" * 100
RESOLVE = "/api/v1/resolve/?identifier=sentiment/sst-2&model_name=bert-base-uncased&config="


@pytest.mark.parametrize(
    "url, message",
    [
        (f"/api/v1/architectures/pfeiffer/?reduction_factor={DIGITS_3000}", "does not fit in 64 bits"),
        (f"/api/v1/architectures/pfeiffer/?reduction_factor={DIGITS_5000}", "does not fit in 64 bits"),
        ("/api/v1/architectures/pfeiffer/?reduction_factor=NaN", "NaN is not a JSON number"),
        ("/api/v1/architectures/pfeiffer/?reduction_factor=1e999", "too large for a 64-bit float"),
        (f"/api/v1/architectures/pfeiffer/?leave_out={NESTED_LIST}", "nested deeper than 32 levels"),
        (RESOLVE + quote(NESTED_OBJECT_IN_URL), "nested deeper than 32 levels"),
        (
            RESOLVE + quote('{"architecture": "bottleneck", "reduction_factor": ' + DIGITS_3000 + "}"),
            "64 bits",
        ),
        (RESOLVE + f"pfeiffer[reduction_factor={DIGITS_3000}]", "(3000 characters)"),
        (f"/api/models?offset={DIGITS_5000}", "whole number"),
    ],
)
def test_numbers_past_64_bits_and_deep_nesting_are_a_clear_400(client, catalogue, url, message):
    response = client.get(url)
    assert response.status_code == 400, response.content[:300]
    assert message in json.dumps(response.json())


def test_an_offset_past_64_bits_is_an_empty_page(client, catalogue):
    response = client.get("/api/models?offset=99999999999999999999999")
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize(
    "range_header", [f"bytes={DIGITS_5000}-", f"bytes=-{DIGITS_5000}", f"bytes=0-{DIGITS_5000}"]
)
def test_a_range_with_thousands_of_digits_is_ignored(client, catalogue, range_header):
    response = client.get(
        "/api/v1/adapters/ukp/bert-sst2/versions/1/files/adapter_config.json", HTTP_RANGE=range_header
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body, message",
    [
        ('{"name": "x1", "config": ' + NESTED_OBJECT + "}", "nested deeper than 32 levels"),
        (
            '{"name": "x1", "config": {"architecture": "bottleneck", "leave_out": ' + NESTED_LIST + "}}",
            "nested",
        ),
        (
            '{"name": "x1", "config": {"architecture": "bottleneck", "reduction_factor": '
            + DIGITS_3000
            + "}}",
            "64 bits",
        ),
        ('{"name": "x1", "config": {"architecture": "bottleneck", "reduction_factor": NaN}}', "NaN"),
    ],
)
def test_json_bodies_past_the_limits_are_a_clear_400(alice_api, body, message):
    response = alice_api.post("/api/v1/architectures/", body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    "config_text, message",
    [
        (
            '{"config": ' + NESTED_OBJECT + ', "model_name": "bert-base-uncased"}',
            "nested deeper than 32 levels",
        ),
        (
            '{"config": {"architecture": "bottleneck", "leave_out": '
            + NESTED_LIST
            + '}, "model_name": "bert-base-uncased"}',
            "nested",
        ),
        (
            '{"config": {"architecture": "bottleneck"}, "model_name": "bert-base-uncased", "x": '
            + NESTED_LIST
            + "}",
            "nested",
        ),
        (
            '{"config": {"architecture": "bottleneck", "reduction_factor": '
            + DIGITS_3000
            + '}, "model_name": "bert-base-uncased"}',
            "64 bits",
        ),
    ],
)
def test_an_uploaded_config_past_the_limits_is_a_clear_400(alice_api, config_text, message):
    files = [io.BytesIO(config_text.encode()), io.BytesIO(weights_bytes())]
    files[0].name, files[1].name = "adapter_config.json", "adapter.safetensors"
    response = alice_api.post(
        "/api/v1/adapters/alice/x/versions/", {"files": files, "task": "sentiment"}, format="multipart"
    )
    assert response.status_code == 400
    assert message in response.json()["detail"]


# --- The JSON API answers in JSON (finding 12) ------------------------------------------------------------


def test_a_form_field_over_the_memory_limit_is_a_json_413(alice_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = alice_api.post(
        "/api/v1/architectures/", {"name": "x", "config": "{}", "description": "d" * 2000}
    )
    assert response.status_code == 413
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]


def test_a_missing_file_is_a_json_404(client, catalogue):
    response = client.get("/api/v1/adapters/ukp/bert-sst2/versions/1/files/nothing.bin")
    assert response.status_code == 404
    # The same words as for a private file (tests/hub/registry/test_downloads.py), so it names no file.
    assert response.json()["detail"] == "ukp/bert-sst2 version 1 has no such file (or it is private)."


@pytest.mark.parametrize(
    "url", ["/api/v1/adapters/ukp/bert-sst2/versions/1/files/adapter_config.json", "/dist/v2/all.json"]
)
def test_a_wrong_method_on_a_download_is_405_not_a_csrf_failure(catalogue, url):
    client = Client(enforce_csrf_checks=True)
    response = client.post(url)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_a_csrf_failure_on_the_api_is_json(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/api/v1/architectures/", {"name": "x"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_error_reports_name_files_not_server_paths(settings):
    import tempfile

    from django.utils import timezone

    from hub.validation.report import ReportBuilder, error_report

    work_copy = f"{tempfile.gettempdir()}/adapterhub-validation-k2j4/files/adapter.safetensors"
    report = ReportBuilder()
    report.failed(
        "file", f"adapter.safetensors cannot be read: Error while deserializing {work_copy}", "unreadable"
    )
    failed = error_report(
        message=f"OSError: [Errno 5] {settings.MEDIA_ROOT}/blobs/ab/cdef", attempt=1, worker="w", started_at=timezone.now(),
        finished_at=timezone.now(),
    )  # fmt: skip
    assert (
        report.checks[0].message
        == "adapter.safetensors cannot be read: Error while deserializing adapter.safetensors"
    )
    assert failed["error"] == "OSError: [Errno 5] cdef"


@pytest.mark.django_db(transaction=True)
def test_an_over_long_url_is_a_414_in_json_through_gunicorn(web_server):
    import requests

    # 8,100 characters: over the hub's limit and gunicorn's default request-line limit (4094), under the
    # request-line limit gunicorn.conf.py sets.
    response = requests.get(f"{web_server.url}/api/v1/adapters/?q={'x' * 8100}", timeout=30)

    assert response.status_code == 414
    assert response.headers["Content-Type"] == "application/json"
    assert "at most 8000" in response.json()["detail"]
