"""The registry's data model: who owns what, which adapters exist, their immutable versions and files."""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from hub.registry.choices import (
    AdapterType,
    MemberRole,
    NamespaceKind,
    TokenScope,
    VersionStatus,
)
from hub.registry.methods import method_choices, method_family
from hub.registry.querysets import (
    AdapterQuerySet,
    AdapterVersionQuerySet,
    BlobQuerySet,
    EmptyRepositoryQuerySet,
    ModelRepositoryQuerySet,
    ModelRevisionQuerySet,
    VersionFileQuerySet,
)
from hub.registry.readme import render_readme

# The longest deprecation message an adapter or a version can carry (plain text, shown in a banner and in the
# clients' warnings, so one or two sentences and a link).
DEPRECATION_MESSAGE_MAX_LENGTH = 500


class Namespace(models.Model):
    """A user's or an organisation's space of adapters (`ukp` in `sentiment/sst-2@ukp`)."""

    name = models.SlugField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=NamespaceKind.choices, default=NamespaceKind.USER)
    description = models.TextField(blank=True)
    url = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="namespaces"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=MemberRole.choices, default=MemberRole.WRITE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "user"], name="unique_membership")]

    def __str__(self):
        return f"{self.user} in {self.namespace} ({self.role})"


class ApiToken(models.Model):
    """A bearer token. Only its sha256 is stored; the token itself is shown once, when it is created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so a person can tell their tokens apart without the secret.
    key_prefix = models.CharField(max_length=12)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.key_prefix}… ({self.scope}) of {self.user}"

    @property
    def is_active(self):
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Architecture(models.Model):
    """A named adapter architecture (configuration), e.g. `pfeiffer`, resolvable by clients."""

    name = models.CharField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    config = models.JSONField()
    config_hash = models.CharField(max_length=16, db_index=True)
    # Derived from `config` on every save (see `method_family`), so lists filter by it without reading JSON.
    method = models.CharField(max_length=20, choices=method_choices, db_index=True)
    # Other names of a built-in (`seq_bn` for `pfeiffer`), as the library registers them.
    aliases = models.JSONField(default=list, blank=True)
    citation = models.TextField(blank=True)
    builtin = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-builtin", "name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.method = method_family(self.config)
        super().save(*args, **kwargs)


class Task(models.Model):
    """A task (`sentiment`), or for language adapters an ISO language code (`de`)."""

    name = models.CharField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=20, choices=AdapterType.choices, default=AdapterType.TASK)

    class Meta:
        ordering = ["type", "name"]

    def __str__(self):
        return self.name


class Subtask(models.Model):
    """A data set within a task (`sst-2`), or for language adapters the corpus (`wiki`)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="subtasks")
    name = models.CharField(max_length=100)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    language = models.CharField(max_length=20, blank=True)
    metric_name = models.CharField(max_length=50, blank=True)
    metric_higher_is_better = models.BooleanField(default=True)
    url = models.URLField(blank=True)
    citation = models.TextField(blank=True)

    class Meta:
        ordering = ["task__name", "name"]
        constraints = [models.UniqueConstraint(fields=["task", "name"], name="unique_subtask_per_task")]

    def __str__(self):
        return f"{self.task.name}/{self.name}"


class BaseModel(models.Model):
    """A pre-trained model adapters are trained for; its transformers config builds the reference model."""

    model_name = models.CharField(max_length=200, unique=True)
    model_type = models.CharField(max_length=50)
    hidden_size = models.PositiveIntegerField()
    num_hidden_layers = models.PositiveIntegerField()
    # Sizes the reference model (4 bytes a parameter in float32), which decides the validation queue.
    parameter_count = models.PositiveBigIntegerField(
        default=0, help_text="Parameters of the bare model; computed from the config when saved in the admin"
    )
    config = models.JSONField(help_text="The transformers config.json of the model")
    # What a PEFT upload is mapped onto (adapters_core.methods.lora.peft.LoRASiteTable), kept here because
    # working it out needs torch, which the web processes do not import.
    lora_sites = models.JSONField(
        default=dict,
        blank=True,
        help_text="The linear layers LoRA may adapt in the model; computed from the config when saved in the admin",
    )

    class Meta:
        ordering = ["model_name"]

    def __str__(self):
        return self.model_name


class Adapter(models.Model):
    """An adapter `namespace/name` for one base model and one architecture; its content lives in versions."""

    namespace = models.ForeignKey(Namespace, on_delete=models.PROTECT, related_name="adapters")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=20, choices=AdapterType.choices, default=AdapterType.TASK)
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="adapters")
    subtask = models.ForeignKey(
        Subtask, null=True, blank=True, on_delete=models.PROTECT, related_name="adapters"
    )
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="adapters")
    # The architecture's registered name when the config equals one (`pfeiffer`), else "custom".
    architecture_name = models.CharField(max_length=100)
    config = models.JSONField()
    config_hash = models.CharField(max_length=16, db_index=True)
    # Derived from `config` on every save (see `method_family`), so lists filter by it without reading JSON.
    method = models.CharField(max_length=20, choices=method_choices, db_index=True)
    # Description, README, citation and license are those of the default version once it has one (a version's
    # metadata is shown when it becomes the default, hub.registry.lifecycle.promote_to_default); before, those
    # of the first upload.
    description = models.TextField(blank=True)
    readme = models.TextField(blank=True)
    # `readme` as sanitised HTML, rendered when `readme` is saved (see `save`), so that views never render it.
    readme_html = models.TextField(blank=True, editable=False)
    citation = models.TextField(blank=True)
    license = models.CharField(max_length=100, blank=True)
    # Free tags its owners give it (hub.registry.repository_actions.edit_adapter), beside the tags the hub
    # derives from its taxonomy and base model.
    tags = models.JSONField(default=list, blank=True)
    private = models.BooleanField(default=False)
    # Deprecation (hub.registry.deprecation): an adapter is deprecated while its message is not empty. It still
    # resolves and downloads; responses, pages and the clients carry the message and the replacement.
    deprecated_message = models.CharField(max_length=DEPRECATION_MESSAGE_MAX_LENGTH, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )
    default_version = models.ForeignKey(
        "AdapterVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    download_count = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # What lists show and filter on: "valid" when any version is valid, else the newest version's status ("" without
    # versions). Kept by the version state machine (hub.registry.lifecycle.refresh_list_status), so a list reads a
    # column instead of running two subqueries per row.
    status = models.CharField(max_length=20, choices=VersionStatus.choices, blank=True, default="")
    # The weighted full-text document of name, taxonomy, owner, base model and description (PostgreSQL only; see
    # hub.registry.search). Kept up to date on save and when a related name changes (hub.registry.signals).
    search_document = SearchVectorField(null=True, editable=False)

    objects = AdapterQuerySet.as_manager()

    class Meta:
        ordering = ["namespace__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="unique_adapter_per_namespace")
        ]
        # The web list and the REST list sort by downloads within any one filter; the pairs below let each filter
        # read its rows already in that order. GIN indexes (PostgreSQL only, created by migration 0004 there):
        # the search document, and trigrams of names for "did you mean".
        indexes = [
            models.Index(fields=["-download_count"], name="adapter_downloads_idx"),
            # Anonymous lists (the most common) and their counts: an index-only scan of the public adapters.
            models.Index(
                fields=["-download_count"], name="adapter_public_dl_idx", condition=Q(private=False)
            ),
            models.Index(fields=["task", "-download_count"], name="adapter_task_downloads_idx"),
            models.Index(fields=["task", "base_model", "-download_count"], name="adapter_task_model_dl_idx"),
            models.Index(fields=["subtask", "-download_count"], name="adapter_subtask_dl_idx"),
            models.Index(fields=["base_model", "-download_count"], name="adapter_model_downloads_idx"),
            models.Index(fields=["namespace", "-download_count"], name="adapter_ns_downloads_idx"),
            models.Index(fields=["architecture_name", "-download_count"], name="adapter_arch_dl_idx"),
            models.Index(fields=["type", "-download_count"], name="adapter_type_downloads_idx"),
            models.Index(fields=["status", "-download_count"], name="adapter_status_dl_idx"),
            models.Index(fields=["-updated_at", "-id"], name="adapter_recent_idx"),
            # `sort=name`: the adapter's name, ties broken by its namespace's id (hub.registry.filtersets).
            models.Index(fields=["name", "namespace"], name="adapter_name_idx"),
            # The other two orders within each filter that holds a few percent of the adapters, so a deep page
            # walks the filter's own rows in order: without them PostgreSQL walks the whole name or recent order
            # past every adapter of other filters (`task=sw&sort=name&page=171`: 320 ms at a million adapters,
            # 15 ms with the index). Within a namespace the unique (namespace, name) pair serves `sort=name`.
            models.Index(fields=["task", "name", "namespace"], name="adapter_task_name_idx"),
            models.Index(fields=["task", "-updated_at", "-id"], name="adapter_task_recent_idx"),
            models.Index(fields=["subtask", "name", "namespace"], name="adapter_subtask_name_idx"),
            models.Index(fields=["subtask", "-updated_at", "-id"], name="adapter_subtask_recent_idx"),
            models.Index(fields=["base_model", "name", "namespace"], name="adapter_model_name_idx"),
            models.Index(fields=["base_model", "-updated_at", "-id"], name="adapter_model_recent_idx"),
            models.Index(fields=["namespace", "-updated_at", "-id"], name="adapter_ns_recent_idx"),
        ]

    def __str__(self):
        return self.full_name

    def save(self, *args, **kwargs):
        self.method = method_family(self.config)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "readme" in update_fields:
            self.readme_html = render_readme(self.readme)
            if update_fields is not None:
                kwargs["update_fields"] = [*update_fields, "readme_html"]
        super().save(*args, **kwargs)

    @property
    def full_name(self):
        return f"{self.namespace.name}/{self.name}"

    @property
    def identifier(self):
        """AdapterHub's identifier, `task/subtask@namespace`."""
        if self.subtask_id is None:
            return f"{self.task.name}@{self.namespace.name}"
        return f"{self.task.name}/{self.subtask.name}@{self.namespace.name}"


class EmptyRepository(models.Model):
    """A repository created through the Hugging Face API (`create_repo`) that has no version yet: its name is
    taken and its privacy chosen. An adapter needs a base model and a task, which only its files and card tell,
    so the first version stored under the name (a commit, or an upload through the REST API) creates the
    `Adapter`, with this privacy, and removes this row (hub.registry.uploads.create_version)."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="empty_repositories")
    name = models.CharField(max_length=100)
    private = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EmptyRepositoryQuerySet.as_manager()

    class Meta:
        ordering = ["namespace__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["namespace", "name"], name="unique_empty_repository_per_namespace"
            )
        ]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self):
        return f"{self.namespace.name}/{self.name}"


class Blob(models.Model):
    """Immutable file content, addressed and stored by its sha256 (`blobs/ab/cdef…`)."""

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    file = models.FileField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BlobQuerySet.as_manager()

    def __str__(self):
        return self.sha256

    @staticmethod
    def storage_path(sha256):
        return f"blobs/{sha256[:2]}/{sha256[2:]}"


class LfsUpload(models.Model):
    """Bytes sent to a repository through the LFS API (hub.compat.hf_lfs): the proof that lets a commit to that
    repository name the blob by sha256 alone (`Blob.objects.referable_by`), even when the same bytes are
    already stored for someone else. The orphan sweep removes these rows after its grace period, as it removes
    uploaded blobs no commit used."""

    repository = models.CharField(max_length=201)  # "namespace/name"
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="lfs_uploads")
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "blob"], name="unique_lfs_upload_per_repository")
        ]

    def __str__(self):
        return f"{self.repository}: {self.blob_id}"


class AdapterVersion(models.Model):
    """One immutable upload of an adapter. Only `valid` versions resolve."""

    adapter = models.ForeignKey(Adapter, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=100)
    # Immutable id of this content (the Hugging Face clients' commit sha): sha1 over identity and file hashes.
    revision = models.CharField(max_length=40, unique=True)
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.PENDING, db_index=True
    )
    report = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    validation_started_at = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    # A zip of the version's files, built on first need: AdapterHub's v2 index points clients at one archive.
    archive = models.ForeignKey(Blob, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # For a version carrying an AdapterFusion: the identifiers of the hub adapters it fuses, as uploaded
    # (form field `fuses`), in the order of the fusion config's adapter names (see hub.registry.fusions).
    fuses = models.JSONField(default=list, blank=True)
    # What the upload said about the adapter (form fields, or a commit's model card). The adapter shows them
    # (non-empty ones) and the version's README.md once this version is its default, so that an upload that
    # ends invalid changes nothing others see.
    description = models.TextField(blank=True)
    citation = models.TextField(blank=True)
    license = models.CharField(max_length=100, blank=True)
    # The version as a commit (the Hugging Face routes' commit history): the commit's title and description as
    # the client sent them; empty for a REST or web upload, whose title is then "Upload version <label>".
    commit_title = models.CharField(max_length=500, blank=True)
    commit_description = models.TextField(blank=True)
    # Downloads of this version, counted exactly as the adapter's `download_count` (the same rule, buffer and
    # nginx log: hub.registry.download_counts); the adapter's count is the sum over its versions plus the
    # downloads counted before versions had a count of their own.
    download_count = models.PositiveBigIntegerField(default=0)
    # A deprecated version (non-empty message, e.g. "trained on a leaked test set") still resolves when pinned
    # and downloads, but is the default only while no other valid version is (hub.registry.lifecycle).
    deprecated_message = models.CharField(max_length=DEPRECATION_MESSAGE_MAX_LENGTH, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)

    objects = AdapterVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["adapter", "version"], name="unique_version_per_adapter")
        ]
        indexes = [
            models.Index(
                fields=["lease_expires_at"],
                name="version_leased_idx",
                condition=Q(status=VersionStatus.VALIDATING),
            )
        ]

    def __str__(self):
        return f"{self.adapter}@{self.version}"

    @property
    def history_title(self) -> str:
        """The version's line in the commit history: its commit's title, or what a REST or web upload did."""
        return self.commit_title or f"Upload version {self.version}"


class VersionFile(models.Model):
    """A file of a version: its name in the adapter directory and its content blob. Which files clients get
    is `VersionFile.objects.served()`."""

    version = models.ForeignKey(AdapterVersion, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="version_files")
    # True for files the hub wrote itself for a valid version (see hub.validation.derived_formats): safetensors
    # converted from a pickle, the pickles written from the validated tensors, the other directory format
    # (adapters/... from a PEFT upload, peft/... from a LoRA or IA³ upload) and the top-level files that let
    # both libraries load the version. A derived file may have the name of an uploaded one, which it replaces.
    derived = models.BooleanField(default=False)

    objects = VersionFileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            # At most one uploaded and one derived file of each name.
            models.UniqueConstraint(
                fields=["version", "name", "derived"], name="unique_file_name_per_version_and_origin"
            )
        ]

    def __str__(self):
        return f"{self.version}:{self.name}"


class ModelRepository(models.Model):
    """A repository of a pre-trained model that is not an adapter: a transformers `save_pretrained` directory
    (config.json, weights, tokenizer files), served through the Hugging Face routes so that clients with
    `HF_ENDPOINT` set to the hub load base models from it (hub.registry.base_model_repositories). Its content
    lives in revisions, one per commit, each immutable; `main` is the newest. No validation: a revision is
    served as soon as it is stored.

    Without a namespace it has a canonical one-segment name (`bert-base-uncased`), which only an admin
    publishes (`manage.py publish_base_model`). When its name is a `BaseModel`'s `model_name`, the two are
    linked (`base_model`), and the BaseModel's config equals the repository's config.json."""

    namespace = models.ForeignKey(
        Namespace, null=True, blank=True, on_delete=models.PROTECT, related_name="model_repositories"
    )
    name = models.CharField(max_length=100)
    private = models.BooleanField(default=False)
    base_model = models.OneToOneField(
        BaseModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="repository"
    )
    # config.json's model_type and architectures of the newest revision (lists and pages show them).
    model_type = models.CharField(max_length=50, blank=True)
    architectures = models.JSONField(default=list, blank=True)
    download_count = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ModelRepositoryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["namespace", "name"],
                condition=Q(namespace__isnull=False),
                name="unique_model_repository_per_namespace",
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(namespace__isnull=True), name="unique_canonical_model_repository"
            ),
        ]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self):
        return self.name if self.namespace is None else f"{self.namespace.name}/{self.name}"


class ModelRevision(models.Model):
    """One commit of a model repository: an immutable set of files. Its revision id is the commit id clients
    read (`X-Repo-Commit`); its label (`v1`, `v2`, ...) is a tag."""

    repository = models.ForeignKey(ModelRepository, on_delete=models.CASCADE, related_name="revisions")
    version = models.CharField(max_length=100)
    revision = models.CharField(max_length=40, unique=True)
    commit_title = models.CharField(max_length=500, blank=True)
    commit_description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelRevisionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "version"], name="unique_revision_per_model_repository"
            )
        ]

    def __str__(self):
        return f"{self.repository}@{self.version}"

    @property
    def history_title(self) -> str:
        return self.commit_title or f"Upload revision {self.version}"


class ModelRevisionFile(models.Model):
    """A file of a model revision: its path in the model directory and its content blob."""

    revision = models.ForeignKey(ModelRevision, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="model_revision_files")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "name"], name="unique_file_per_model_revision")
        ]

    def __str__(self):
        return f"{self.revision}:{self.name}"


class DownloadLogPosition(models.Model):
    """How far the downloads nginx logged (`DOWNLOADS_NGINX_LOG`) have been counted: the file's inode and the
    offset after the last counted line. Moved in the same transaction as the counts it adds, so each logged
    download is counted once (hub.registry.download_log)."""

    path = models.CharField(max_length=500, unique=True)
    inode = models.BigIntegerField(default=0)
    offset = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.path} @ {self.offset}"


class MirroredRepository(models.Model):
    """A repository this hub copied from an upstream endpoint (hub.registry.mirroring): the revision it follows
    there and the upstream commit it holds, so that a refresh asks the upstream for that revision's commit id and
    fetches files only when it moved."""

    repo_id = models.CharField(
        max_length=201, unique=True
    )  # "namespace/name", or a canonical one-segment name
    endpoint = models.CharField(max_length=500)
    revision = models.CharField(
        max_length=255, default="main"
    )  # a branch follows the upstream; a commit id stays
    upstream_commit = models.CharField(max_length=64)
    mirrored_at = models.DateTimeField()
    checked_at = models.DateTimeField()

    def __str__(self):
        return f"{self.repo_id} from {self.endpoint} at {self.upstream_commit[:12]}"


class SearchWord(models.Model):
    """Every word (lexeme) that an adapter's search document holds or held, kept by
    hub.registry.search.refresh_search_documents: a search's last word, matched as the start of a word, is
    looked up here (a prefix scan of this index) and searched as the whole words it completes to, which GIN
    intersects with the other words in the index instead of collecting every posting of the prefix first.
    Words of adapters deleted or renamed since stay: such a word matches no document."""

    word = models.TextField(unique=True)

    def __str__(self):
        return self.word
