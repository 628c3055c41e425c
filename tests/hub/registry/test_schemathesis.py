"""The OpenAPI schema is the API (issue 16, finding 11): schemathesis generates requests from the live schema
(`/api/schema/`) and sends them to a live server with a write token. Every check must pass: no server error,
no status code or content type the schema does not name, every response body as the schema says."""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig

from hub.registry.choices import TokenScope
from tests.factories import ApiTokenFactory, NamespaceFactory, UserFactory, valid_adapter

# A few examples per operation keep the run within a minute or two; the checks, not the count, find bugs.
EXAMPLES_PER_OPERATION = 8


@pytest.mark.django_db
def test_the_schema_documents_tokens_errors_nullable_fields_and_downloads(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    upload = schema["paths"]["/api/v1/adapters/{namespace}/{name}/versions/"]["post"]
    assert {"400", "401", "403", "404", "409", "413", "429"} <= set(upload["responses"])
    assert upload["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    adapter = schema["components"]["schemas"]["AdapterDetail"]["properties"]
    assert adapter["latest_version"]["nullable"] and adapter["default_version"]["nullable"]
    config = schema["components"]["schemas"]["ArchitectureRegister"]["properties"]["config"]
    assert config["type"] == "object" and not config.get("nullable")
    download = schema["paths"]["/api/v1/adapters/{namespace}/{name}/versions/{version}/files/{file_name}"]
    assert {"200", "206", "304", "404", "416"} <= set(download["get"]["responses"])


@pytest.fixture
def write_token_raw(transactional_db):
    valid_adapter(namespace=NamespaceFactory(name="ukp"), name="bert-sst2")
    return ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw


def test_the_api_answers_as_its_schema_says(live_server, write_token_raw):
    # Every check runs. Schema-valid requests may still get a 400: whether a config is valid, or a config name
    # exists, is the hub's to decide (with a message saying why), and no schema can say it.
    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
                }
            }
        }
    )
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", config=config)
    headers = {"Authorization": f"Bearer {write_token_raw}"}
    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def check(case):
            case.call_and_validate(headers=headers)

        try:
            check()
        # Schemathesis raises a FailureGroup (a BaseExceptionGroup); every operation is run, failures reported
        # together.
        except (Exception, BaseExceptionGroup) as exc:
            failures[operation.label] = str(exc)[:1500]
    assert not failures, "\n\n".join(f"{label}: {message}" for label, message in failures.items())
