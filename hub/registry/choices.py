"""Named constants for the registry's choice fields."""

from django.db import models

from adapters_core.upload_metadata import ADAPTER_TYPE_LABELS, LANGUAGE_ADAPTER, TASK_ADAPTER


class AdapterType(models.TextChoices):
    """The adapter types adapters_core.upload_metadata declares for every upload path and the client, named for
    the hub's code (tests/test_upload_metadata.py checks that every declared type has a member here)."""

    TASK = TASK_ADAPTER, ADAPTER_TYPE_LABELS[TASK_ADAPTER]
    LANGUAGE = LANGUAGE_ADAPTER, ADAPTER_TYPE_LABELS[LANGUAGE_ADAPTER]


class VersionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VALIDATING = "validating", "Validating"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"
    ERROR = "error", "Error"


# Statuses a version never leaves on its own.
FINAL_STATUSES = (VersionStatus.VALID, VersionStatus.INVALID, VersionStatus.ERROR)


class NamespaceKind(models.TextChoices):
    USER = "user", "User"
    ORGANIZATION = "organization", "Organization"


class MemberRole(models.TextChoices):
    OWNER = "owner", "Owner"
    WRITE = "write", "Write"
    READ = "read", "Read"


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
