"""Named constants for the registry's choice fields."""

from django.db import models


class AdapterType(models.TextChoices):
    TASK = "text_task", "Task adapter"
    LANGUAGE = "text_lang", "Language adapter"


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
