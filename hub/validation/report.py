"""The validation report stored on `AdapterVersion.report`, and its JSON Schema.

Every check adds one entry with pass/fail and a message a user can act on. The schema below is the
documented contract (docs/validation.md shows an example); the tests check every report against it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from hub.registry.storable import storable

REPORT_SCHEMA_VERSION = 1

# The checks, in the order they run. A failed check stops the ones after it (they are recorded as skipped).
CHECK_NAMES = ("file", "config", "structure", "load_and_run")

CHECK_PASSED, CHECK_FAILED, CHECK_SKIPPED = "passed", "failed", "skipped"

REPORT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "AdapterHub validation report",
    "type": "object",
    "required": ["schema_version", "outcome", "summary", "checks", "warnings", "files", "attempt"],
    "properties": {
        "schema_version": {"const": REPORT_SCHEMA_VERSION},
        "outcome": {"enum": ["valid", "invalid", "error"]},
        "summary": {"type": "string", "description": "One sentence: the result, or the first thing to fix."},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "result", "message"],
                "properties": {
                    "name": {"enum": list(CHECK_NAMES)},
                    "result": {"enum": [CHECK_PASSED, CHECK_FAILED, CHECK_SKIPPED]},
                    "message": {"type": "string"},
                    "code": {"type": "string", "description": "Machine-readable reason of a failure."},
                    "details": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "size", "sha256", "derived"],
                "properties": {
                    "name": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "derived": {"type": "boolean"},
                    "derived_from": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
        "metrics": {
            "type": "object",
            "properties": {
                "parameter_count": {"type": "integer", "minimum": 0},
                "weights_bytes": {"type": "integer", "minimum": 0},
                "forward_ms": {"type": "number", "minimum": 0},
                "total_ms": {"type": "number", "minimum": 0},
                "probe_output_checksum": {"type": "string"},
                "probe_output_max_abs_change": {"type": "number", "minimum": 0},
                "conversion_output_bytes": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Largest safetensors file the legacy pickle converter wrote for the version.",
                },
                "conversion_peak_rss_bytes": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Largest peak resident memory of a converter child for the version.",
                },
            },
        },
        "reference_model": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "weights": {"enum": ["pretrained", "seeded"]},
                "device": {"type": "string"},
                "model_class": {"type": "string"},
                "build_seconds": {"type": "number"},
                "cached": {"type": "boolean"},
                "repository": {
                    "type": "string",
                    "description": "The hub's base-model repository the weights are from.",
                },
                "revision": {
                    "type": "string",
                    "description": "Its revision (commit id) the weights are from.",
                },
                "note": {
                    "type": "string",
                    "description": "Why the weights are seeded (the hub does not host the model).",
                },
            },
        },
        "effect": {
            "type": "object",
            "description": "What the adapter does to the pretrained weights (hub.validation.effect); absent on seeded ones.",
            "properties": {
                "relative_change": {"type": ["number", "null"], "minimum": 0},
                "largest_layer_relative_change": {"type": ["number", "null"], "minimum": 0},
                "loss_before": {"type": ["number", "null"]},
                "loss_after": {"type": ["number", "null"]},
                "loss_probe": {"enum": ["text", "token_ids"]},
                "loss_tokens": {"type": "integer", "minimum": 2},
            },
            "additionalProperties": False,
        },
        "attempt": {"type": "integer", "minimum": 0},
        "worker": {"type": "string"},
        "started_at": {"type": ["string", "null"]},
        "finished_at": {"type": "string"},
        "error": {"type": "string", "description": "For outcome 'error': what went wrong on the hub's side."},
    },
    "additionalProperties": False,
}


@dataclass
class CheckResult:
    name: str
    result: str
    message: str
    code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "result": self.result, "message": self.message}
        if self.code:
            data["code"] = self.code
        if self.details:
            data["details"] = self.details
        return data


@dataclass
class ReportBuilder:
    """Collects check results, warnings, files and metrics while a validation runs."""

    checks: list[CheckResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    reference_model: dict[str, Any] = field(default_factory=dict)
    effect: dict[str, Any] = field(default_factory=dict)

    def passed(self, name: str, message: str, **details: Any) -> None:
        self.checks.append(CheckResult(name, CHECK_PASSED, without_server_paths(message), details=details))

    def failed(self, name: str, message: str, code: str, **details: Any) -> None:
        self.checks.append(
            CheckResult(name, CHECK_FAILED, without_server_paths(message), code=code, details=details)
        )

    def first_failure(self) -> CheckResult | None:
        return next((check for check in self.checks if check.result == CHECK_FAILED), None)

    def build(
        self, *, outcome: str, attempt: int, worker: str, started_at, finished_at, error: str = ""
    ) -> dict:
        """The report as stored: ran checks, then every later check as skipped."""
        ran = {check.name for check in self.checks}
        checks = [check.as_dict() for check in self.checks]
        for name in CHECK_NAMES:
            if name not in ran:
                checks.append(
                    CheckResult(name, CHECK_SKIPPED, "Not run: an earlier check failed or stopped.").as_dict()
                )
        failure = self.first_failure()
        if outcome == "valid":
            summary = "The adapter loads into the reference model and gives finite outputs."
            if self.warnings:
                summary += f" {len(self.warnings)} warning(s)."
        elif outcome == "invalid" and failure is not None:
            summary = f"{failure.name} check failed: {failure.message}"
        else:
            summary = f"Validation could not finish: {error}" if error else "Validation could not finish."
        report: dict[str, Any] = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "outcome": outcome,
            "summary": summary,
            "checks": checks,
            "warnings": list(self.warnings),
            "files": list(self.files),
            "attempt": attempt,
            "worker": worker,
            "started_at": started_at.isoformat() if started_at else None,
            "finished_at": finished_at.isoformat(),
        }
        if self.metrics:
            report["metrics"] = dict(self.metrics)
        if self.reference_model:
            report["reference_model"] = dict(self.reference_model)
        if self.effect:
            report["effect"] = dict(self.effect)
        if error:
            report["error"] = error
        # Messages and details quote uploaded content (tensor names, config values), which may hold NULs.
        return storable(report)


def error_report(*, message: str, attempt: int, worker: str, started_at, finished_at) -> dict:
    """The report of a version the hub gave up on (no check could decide it)."""
    return ReportBuilder().build(
        outcome="error",
        attempt=attempt,
        worker=worker,
        started_at=started_at,
        finished_at=finished_at,
        error=without_server_paths(message),
    )


def without_server_paths(text: str) -> str:
    """`text` with each path under the server's temporary or media folder replaced by the file's name:
    messages of libraries name the worker's copy of a file (`/tmp/adapterhub-validation-x/files/adapter.
    safetensors`), which says nothing to the uploader and something to an attacker."""
    roots = sorted({tempfile.gettempdir(), str(settings.MEDIA_ROOT)}, key=len, reverse=True)
    pattern = "|".join(re.escape(root.rstrip("/")) for root in roots)
    return re.sub(
        rf"(?:{pattern})/[^\s'\"]*", lambda match: match.group().rstrip("/").rsplit("/", 1)[-1], text
    )
