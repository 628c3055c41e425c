"""Admin pages for the registry. Versions and blobs are immutable: their content is read-only here."""

from django.contrib import admin

from hub.registry.models import (
    Adapter,
    AdapterVersion,
    ApiToken,
    Architecture,
    BaseModel,
    Blob,
    EmptyRepository,
    Membership,
    Namespace,
    Subtask,
    Task,
    VersionFile,
)
from hub.registry.seed import lora_site_table, parameter_count


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Namespace)
class NamespaceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "display_name", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "display_name"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "key_prefix",
        "user",
        "scope",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope"]
    search_fields = ["user__username", "name", "key_prefix"]
    readonly_fields = ["key_hash", "key_prefix", "created_at", "last_used_at"]


@admin.register(Architecture)
class ArchitectureAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name", "method", "config_hash", "builtin", "created_at"]
    list_filter = ["builtin", "method"]
    search_fields = ["name", "display_name"]
    # Clients cache configs by name: a registered config never changes (nor its method, derived from it).
    readonly_fields = ["config", "config_hash", "method", "aliases", "builtin", "created_by"]


class SubtaskInline(admin.TabularInline):
    model = Subtask
    extra = 0


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["name", "display_name", "type"]
    list_filter = ["type"]
    search_fields = ["name", "display_name"]
    inlines = [SubtaskInline]


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ["model_name", "model_type", "hidden_size", "num_hidden_layers", "parameter_count"]
    search_fields = ["model_name"]
    readonly_fields = ["parameter_count", "lora_sites"]

    def save_model(self, request, obj, form, change):
        # The count decides which workers validate the base model's versions (hub.registry.lifecycle); the
        # LoRA sites are what PEFT uploads for it are mapped onto (hub.registry.uploads).
        obj.parameter_count = parameter_count(obj.config)
        obj.lora_sites = lora_site_table(obj.config)
        super().save_model(request, obj, form, change)


class VersionInline(admin.TabularInline):
    model = AdapterVersion
    fields = ["version", "status", "revision", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "task",
        "subtask",
        "base_model",
        "architecture_name",
        "download_count",
        "private",
    ]
    list_filter = ["type", "private", "method", "architecture_name", "base_model"]
    search_fields = ["name", "namespace__name", "description"]
    readonly_fields = [
        "config",
        "config_hash",
        "method",
        "architecture_name",
        "download_count",
        "created_at",
        "updated_at",
    ]
    inlines = [VersionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_related()


class VersionFileInline(admin.TabularInline):
    model = VersionFile
    fields = ["name", "blob", "derived"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(EmptyRepository)
class EmptyRepositoryAdmin(admin.ModelAdmin):
    """Names taken through the Hugging Face API (`create_repo`) that never got a commit; deleting one frees it."""

    list_display = ["namespace", "name", "private", "created_by", "created_at"]
    list_filter = ["private"]
    search_fields = ["namespace__name", "name"]
    readonly_fields = ["created_at"]


@admin.register(AdapterVersion)
class AdapterVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "attempts", "created_at", "validated_at"]
    list_filter = ["status"]
    search_fields = ["adapter__name", "adapter__namespace__name", "revision"]
    readonly_fields = ["adapter", "version", "revision", "archive", "created_by", "created_at", "report"]
    inlines = [VersionFileInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_adapter()


@admin.register(Blob)
class BlobAdmin(admin.ModelAdmin):
    list_display = ["sha256", "size", "created_at"]
    search_fields = ["sha256"]
    readonly_fields = ["sha256", "size", "file", "created_at"]
