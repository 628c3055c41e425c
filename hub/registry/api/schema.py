"""What drf-spectacular cannot see in the views, added to the OpenAPI schema (`/api/schema/`): the Bearer token
scheme, the error responses every operation can give (with their body), and the download route (a plain
Django view). Loaded by `RegistryConfig.ready` (the extension registers itself) and SPECTACULAR_SETTINGS."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: `detail` says what was wrong and how to fix it.",
    "properties": {
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "The request field at fault, when one is."},
        "suggestions": {"type": "array", "items": {"type": "string"}},
        "candidates": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["detail"],
    "additionalProperties": True,
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
# The Hugging Face Hub's routes answer errors as that Hub does: `{"error": message}` (and X-Error-* headers).
HUB_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "additionalProperties": True,
}
HUB_ERROR_REF = {"$ref": "#/components/schemas/HubError"}
NATIVE_API_PREFIX = "/api/v1/"

ERROR_DESCRIPTIONS = {
    "400": "The request is malformed (a parameter, a form field, a JSON body); `detail` says what to fix.",
    "401": "The token is unknown, revoked or expired.",
    "403": "The token or session may not do this (read-only token, not a member, failed CSRF check).",
    "404": "Nothing is there (or it is private).",
    "409": "It conflicts with what is stored (an existing version or architecture).",
    "413": "A file or the form is larger than the hub accepts.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
}
# Errors every operation can give: bad input, a bad token, nothing there (also a page past the end), throttling.
COMMON_ERRORS = ("400", "401", "404", "429")
UNSAFE_METHOD_ERRORS = ("403", "413")
# Operations that refuse what conflicts with what is stored.
CONFLICT_OPERATIONS = {"api_v1_architectures_create", "api_v1_adapters_versions_create"}

# What hub.http_errors lets through in a path or query value: no control characters.
NO_CONTROL_CHARACTERS = "^[^\\x00-\\x1f\\x7f]*$"

DOWNLOAD_PATH = "/api/v1/adapters/{namespace}/{name}/versions/{version}/files/{file_name}"

# An example for each parameter of the native API, naming what `make run` seeds (a demo adapter, a built-in
# architecture): Swagger UI's "Try it out" and schemathesis's examples phase send them.
PARAMETER_EXAMPLES = {
    "namespace": "ukp",
    "name": "sst-2",
    "version": "1",
    "file_name": "adapter_config.json",
    "identifier": "sentiment/sst-2@ukp",
    "model_name": "bert-base-uncased",
}
ARCHITECTURE_PATH_PREFIX = "/api/v1/architectures/"
ARCHITECTURE_EXAMPLE = "pfeiffer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "hub.registry.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer <token>` (Account → API tokens, or "
            "`python manage.py issue_token USERNAME`).",
        }


def _error(code: str, schema=ERROR_REF) -> dict:
    return {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": schema}}}


def _download_operation() -> dict:
    def parameter(name, description):
        return {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": description,
        }

    # A file's type follows its name (application/json for configs, text/markdown for README.md, ...).
    binary = {"*/*": {"schema": {}}}
    return {
        "operationId": "downloadFile",
        "summary": "Download one file of a version (GET or HEAD; ETag, Range, If-None-Match)",
        "tags": ["api"],
        "parameters": [
            parameter("namespace", "e.g. ukp"),
            parameter("name", "e.g. bert-base-uncased-sentiment-sst-2"),
            parameter("version", "A version label"),
            parameter("file_name", "e.g. adapter.safetensors"),
        ],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}, {}],
        "responses": {
            "200": {"description": "The file's bytes", "content": binary},
            "206": {"description": "The requested byte range", "content": binary},
            "304": {"description": "The client's copy is current (If-None-Match)"},
            "400": _error("400"),
            "404": _error("404"),
            "416": {"description": "The range cannot be satisfied"},
        },
    }


def _refuse_control_characters(schema: dict) -> None:
    if "pattern" in schema:  # a route's own pattern (the Hugging Face routes): both must hold
        schema.setdefault("allOf", []).append({"pattern": NO_CONTROL_CHARACTERS})
    else:
        schema["pattern"] = NO_CONTROL_CHARACTERS


def _add_example(path: str, parameter: dict) -> None:
    if path.startswith(ARCHITECTURE_PATH_PREFIX) and parameter["name"] == "name":
        parameter.setdefault("example", ARCHITECTURE_EXAMPLE)
    elif parameter["name"] in PARAMETER_EXAMPLES:
        parameter.setdefault("example", PARAMETER_EXAMPLES[parameter["name"]])


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: adds the error responses and the download route."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"], schemas["HubError"] = ERROR_SCHEMA, HUB_ERROR_SCHEMA
    download = _download_operation()
    result["paths"][DOWNLOAD_PATH] = {
        "get": download,
        "head": {**download, "operationId": "downloadFileHead"},
    }
    for path, operations in result.get("paths", {}).items():
        error_schema = ERROR_REF if path.startswith(NATIVE_API_PREFIX) else HUB_ERROR_REF
        for method, operation in operations.items():
            codes = list(COMMON_ERRORS)
            if method not in ("get", "head", "options"):
                codes += UNSAFE_METHOD_ERRORS
            if operation.get("operationId") in CONFLICT_OPERATIONS:
                codes.append("409")
            # Reading is open to anonymous clients (hub.registry.api.permissions.WriteAccess), except `me`.
            if (
                method in ("get", "head")
                and not path.endswith("/me/")
                and {} not in operation.get("security", [{}])
            ):
                operation["security"].append({})
            for parameter in operation.get("parameters", []):
                if parameter.get("schema", {}).get("type") == "string" and parameter.get("in") in (
                    "path",
                    "query",
                ):
                    _refuse_control_characters(parameter["schema"])
                    if parameter.get("required"):  # a required parameter is refused when empty
                        parameter["schema"].setdefault("minLength", 1)
                if path.startswith(NATIVE_API_PREFIX):
                    _add_example(path, parameter)
            for code in codes:
                operation["responses"].setdefault(code, _error(code, error_schema))
    return result
