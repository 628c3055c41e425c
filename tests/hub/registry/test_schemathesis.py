"""The OpenAPI schema is the API: schemathesis (its command line, as a user runs it) generates requests from the
live schema (`/api/schema/`) and sends them to the hub under gunicorn with a write token, in every phase
(examples, coverage, fuzzing, stateful) and with every check. It must find nothing: no server error, no status
code, content type or header the schema does not name, every response body as the schema says, bad input
refused, good input accepted."""

import subprocess
import sys
from pathlib import Path

import pytest

from hub.registry.choices import TokenScope
from tests.factories import ApiTokenFactory, NamespaceFactory, UserFactory, valid_adapter

# Examples per operation and phase: enough for every check to see each operation's answers, few enough that
# the run takes well under a minute on two cores.
EXAMPLES_PER_OPERATION = 25
SCHEMATHESIS = str(Path(sys.executable).with_name("st"))


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
    # The adapter the schema's examples name (hub.registry.api.schema.PARAMETER_EXAMPLES), and a writer.
    valid_adapter(namespace=NamespaceFactory(name="ukp"), name="sst-2")
    return ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw


def schemathesis_config(token: str) -> str:
    return f"""
headers = {{ Authorization = "Bearer {token}" }}
workers = 1
seed = 20

[generation]
max-examples = {EXAMPLES_PER_OPERATION}

[phases.examples]
enabled = true
[phases.coverage]
enabled = true
[phases.fuzzing]
enabled = true
[phases.stateful]
enabled = true

# Every check runs. Schema-valid requests may still get a 400: whether a config is valid, or a config name
# exists, is the hub's to decide (with a message saying why), and no schema can say it.
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

# Uploads go to the token's own namespace, so that they reach the upload's checks rather than a 403.
[[operations]]
include-operation-id = "api_v1_adapters_versions_create"
parameters = {{ "path.namespace" = "alice" }}
"""


def test_the_api_answers_as_its_schema_says(web_server, write_token_raw, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(write_token_raw))
    command = [
        SCHEMATHESIS, "--config-file", str(config), "run", f"{web_server.url}/api/schema/", "--checks", "all",
        "--suppress-health-check", "all",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    # Every phase ran (none skipped for want of examples or links) and none found anything.
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, output[-5000:]
