"""Server-rendered pages of the web UI. Each page runs a small, fixed number of SQL queries (see tests)."""

import dataclasses

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from adapters_core.directory import README_FILE
from frontend.base import AdapterPageView
from frontend.config_keys import config_rows
from frontend.diagram import layer_diagram
from frontend.forms import FilterOptions, TokenForm, UploadForm, adapter_status_choices
from frontend.layer_plan import describe_layer, plan_layer
from frontend.snippets import config_load_snippets, key_values, usage_snippets
from hub.compat.huggingface.representations import COMMON_TAGS, adapter_tags
from hub.public_urls import public_base_url
from hub.registry.architectures import find_architecture
from hub.registry.caching import cache_key, registry_generation
from hub.registry.choices import AdapterType, VersionStatus
from hub.registry.deprecation import replacement_shown
from hub.registry.errors import BadRequest, RegistryError
from hub.registry.filtersets import (
    SORT_ORDERS,
    AdapterFilterSet,
    CachedCountPaginator,
    check_page_bounds,
    list_identity,
)
from hub.registry.methods import method_choices
from hub.registry.models import (
    AdapterVersion,
    ApiToken,
    Architecture,
    ModelRevisionFile,
    Namespace,
    Subtask,
    Task,
    VersionFile,
)
from hub.registry.permissions import writable_namespaces
from hub.registry.resolution import file_path
from hub.registry.search import suggestions
from hub.registry.storage import HashingUploadHandler, read_blob
from hub.registry.tokens import create_token

PAGE_SIZE = 20
HOME_LIST_SIZE = 6
# How much of a base model's README.md its page shows.
README_SHOWN_BYTES = 20_000


# --------------------------------------------------------------------------------------------------
# Public pages
# --------------------------------------------------------------------------------------------------


class HomePage(AdapterPageView):
    def get(self, request):
        # Counted as listed: an adapter is counted once it was checked (or for its namespace's members).
        listed = self.listed_adapters()
        counts = FilterOptions.counts(listed)
        # A handful of rows each, read with what a row shows (`list_rows`) in the query that orders them.
        recent = listed.list_rows().order_by(*SORT_ORDERS["recent"])[:HOME_LIST_SIZE]
        popular = listed.list_rows().order_by(*SORT_ORDERS["downloads"])[:HOME_LIST_SIZE]
        return render(request, "frontend/home.html", {"counts": counts, "recent": recent, "popular": popular})


class ExplorePage(AdapterPageView):
    def get(self, request):
        in_view = Q(adapters__pk__in=self.visible_adapters().values("pk"))
        subtasks = Subtask.objects.annotate(adapter_count=Count("adapters", filter=in_view)).order_by("name")
        tasks = (
            Task.objects.annotate(adapter_count=Count("adapters", filter=in_view, distinct=True))
            .prefetch_related(Prefetch("subtasks", queryset=subtasks))
            .order_by("display_name", "name")
        )
        task_groups = [task for task in tasks if task.type == AdapterType.TASK]
        language_groups = [task for task in tasks if task.type == AdapterType.LANGUAGE]
        return render(
            request, "frontend/explore.html", {"task_groups": task_groups, "language_groups": language_groups}
        )


# Anonymous list pages are kept this long per process, like the REST list's anonymous answers.
LIST_PAGE_CACHE_SECONDS = 5


class AdapterListPage(AdapterPageView):
    """The adapter list. Pages for anonymous visitors (without pending messages, which the page would show)
    are cached per registry generation for LIST_PAGE_CACHE_SECONDS."""

    def get(self, request):
        cacheable = not request.user.is_authenticated and not len(messages.get_messages(request))
        if not cacheable:
            return _adapter_list(request, self.listed_adapters())
        key = cache_key("frontend:adapter-list", registry_generation(), request.get_full_path())
        content = cache.get(key)
        if content is not None:
            return HttpResponse(content)
        response = _adapter_list(request, self.listed_adapters())
        if response.status_code == 200:
            cache.set(key, response.content, LIST_PAGE_CACHE_SECONDS)
        return response


def _adapter_list(request, adapters):
    try:
        check_page_bounds(_page_number(request), PAGE_SIZE)
    except BadRequest as exc:
        return render(request, "frontend/list_bounds.html", {"message": exc.message}, status=400)
    filterset = AdapterFilterSet(request.GET or None, queryset=adapters)
    errors = {}
    if filterset.is_bound and not filterset.is_valid():
        errors = {name: list(messages_) for name, messages_ in filterset.errors.items()}
        results = adapters.none()
    else:
        results = filterset.qs if filterset.is_bound else adapters.order_by(*SORT_ORDERS["downloads"])
    # A search sorted by relevance shows its ranked candidates and counts all its matches.
    counted = filterset.unsorted_qs() if filterset.is_bound and not errors else results
    paginator = CachedCountPaginator(
        results,
        PAGE_SIZE,
        list_key=list_identity(request.GET, request.user),
        count_queryset=counted,
        candidate_ids=filterset.relevance_candidate_ids if filterset.is_bound and not errors else None,
    )
    page = paginator.get_page(request.GET.get("page"))
    active = []
    for name, value in request.GET.items():
        if name in ("page", "sort") or not value:
            continue
        remaining = request.GET.copy()
        remaining.pop(name)
        remaining.pop("page", None)
        active.append({"name": name, "value": value, "remove_url": f"?{remaining.urlencode()}"})
    query = request.GET.get("q", "")
    context = {
        "page": page,
        "options": _filter_options(request.GET.get("namespace")),
        "values": request.GET,
        "errors": errors,
        "active_filters": active,
        "sort": filterset.sort_order if filterset.is_bound and not errors else "downloads",
        "status_choices": adapter_status_choices(),
        "type_choices": AdapterType.choices,
        "method_choices": method_choices(),
        "search_query": query,
        "suggestions": _suggestion_links(request, adapters)
        if query and not errors and not paginator.count
        else [],
    }
    return render(request, "frontend/adapter_list.html", context)


def _filter_options(namespace: str | None) -> FilterOptions:
    """The menus of the list page; a namespace filtered by that the namespace menu leaves out (it lists the
    owners of the most downloaded adapters) is added to it, so that it shows as chosen, not as unknown."""
    options = FilterOptions.cached()
    if (
        namespace
        and namespace not in {value for value, _ in options.namespaces}
        and Namespace.objects.filter(name=namespace).exists()
    ):
        options = dataclasses.replace(options, namespaces=[*options.namespaces, (namespace, namespace)])
    return options


def _page_number(request) -> int:
    try:
        return int(request.GET.get("page") or 1)
    except ValueError:
        return 1  # Paginator.get_page shows the first page for a page that is not a number


def _suggestion_links(request, adapters) -> list[dict]:
    """ "Did you mean" links: the same list with the search replaced by a query that finds something."""
    others = request.GET.copy()
    query = others.pop("q")[-1]
    others.pop("page", None)
    filterset = AdapterFilterSet(others, queryset=adapters)
    links = []
    for suggestion in suggestions(filterset.unsorted_qs(), query):
        changed = others.copy()
        changed["q"] = suggestion
        links.append({"query": suggestion, "url": f"?{changed.urlencode()}"})
    return links


class NamespacePage(AdapterPageView):
    def get(self, request, namespace):
        namespace_obj = Namespace.objects.filter(name=namespace).first()
        if namespace_obj is None:
            raise Http404(f"There is no namespace {namespace!r}.")
        adapters = (
            self.listed_adapters()
            .list_rows()
            .filter(namespace=namespace_obj)
            .order_by("-download_count", "name")
        )
        members = namespace_obj.memberships.select_related("user").order_by("user__username")
        return render(
            request,
            "frontend/namespace.html",
            {"namespace": namespace_obj, "adapters": adapters, "members": members},
        )


class AdapterPage(AdapterPageView):
    def get(self, request, namespace, name):
        adapter = self.get_adapter(namespace, name, prepare=self.with_page_rows)
        return _adapter_page(
            request,
            adapter,
            self.hosted_base_model(adapter.base_model.model_name),
            replacement=replacement_shown(adapter, self.visible_adapters()),
        )

    @staticmethod
    def with_page_rows(adapters):
        """What the page shows in one go: related rows, the current version, every version (newest first)
        with its served files; not the README's source (the page shows readme_html, rendered when stored)."""
        files = Prefetch("files", queryset=VersionFile.objects.served().select_related("blob"))
        versions = Prefetch(
            "versions", queryset=AdapterVersion.objects.prefetch_related(files).newest_first()
        )
        return adapters.with_related().with_current_version().prefetch_related(versions).defer("readme")


def _versions_with_download_paths(adapter) -> list:
    """The adapter's versions (as `AdapterPage.with_page_rows` prefetches them), each file with its download
    path."""
    versions = list(adapter.versions.all())
    for version in versions:
        for version_file in version.files.all():
            version_file.download_path = file_path(adapter, version.version, version_file.name)
    return versions


class CommitPage(AdapterPageView):
    """`/{ns}/{name}/commit/{revision}`: one version as a commit, the page behind the `commitUrl` the Hugging
    Face routes answer: its title and description, author, date, parent commit, status, files and report."""

    def get(self, request, namespace, name, revision):
        adapter = self.get_adapter(namespace, name, prepare=AdapterPage.with_page_rows)
        versions = _versions_with_download_paths(adapter)
        position = next((i for i, v in enumerate(versions) if v.revision == revision), None)
        if position is None:
            raise Http404(f"{adapter.full_name} has no commit {revision}.")
        version = versions[position]
        # The head it was built on: the newest earlier version that did not fail (lookups.commit_history).
        failed = (VersionStatus.INVALID, VersionStatus.ERROR)
        parent = next((v for v in versions[position + 1 :] if v.status not in failed), None)
        context = {"adapter": adapter, "version": version, "parent": parent}
        return render(request, "frontend/commit.html", context)


def _adapter_page(request, adapter, hosted_base_model=None, replacement=None):
    """The adapter's page; `replacement` is the adapter that replaces a deprecated one, when the visitor may see
    it (hub.registry.deprecation.replacement_shown)."""
    versions = _versions_with_download_paths(adapter)
    current = next((v for v in versions if v.pk == adapter.current_version_id), None)
    plan = plan_layer(adapter.config)
    context = {
        "adapter": adapter,
        "versions": versions,
        "default_version": current,
        # Without a valid version the page shows the newest upload (its report says what went wrong).
        "shown_version": current or (versions[0] if versions else None),
        "snippets": usage_snippets(
            adapter, public_base_url(request), [file.name for file in current.files.all()] if current else []
        ),
        "config_rows": config_rows(adapter.config),
        "key_values": key_values(adapter.config, adapter.method),
        "diagram": layer_diagram(adapter.config, hidden_size=adapter.base_model.hidden_size),
        "diagram_text": describe_layer(plan),
        "hosted_base_model": hosted_base_model,
        "replacement": replacement,
        # Every adapter has the common tags; the page shows those that tell it apart.
        "tags": [tag for tag in adapter_tags(adapter) if tag not in COMMON_TAGS],
    }
    return render(request, "frontend/adapter_detail.html", context)


class BaseModelListPage(AdapterPageView):
    """`/models/`: the base models the hub hosts that the visitor may see, by name, PAGE_SIZE a page, each with
    the number of listed adapters built on it."""

    def get(self, request):
        repositories = self.visible_model_repositories().order_by("name", "namespace__name")
        page = Paginator(repositories, PAGE_SIZE).get_page(request.GET.get("page"))
        names = [repository.full_name for repository in page]
        adapter_counts = dict(
            self.listed_adapters()
            .filter(base_model__model_name__in=names)
            .order_by()
            .values_list("base_model__model_name")
            .annotate(count=Count("id"))
            .values_list("base_model__model_name", "count")
        )
        rows = [
            {"repository": repository, "adapter_count": adapter_counts.get(repository.full_name, 0)}
            for repository in page
        ]
        return render(request, "frontend/base_model_list.html", {"page": page, "rows": rows})


class BaseModelPage(AdapterPageView):
    """`/models/{name}/` and `/models/{ns}/{name}/`: a base model the hub hosts (hub.registry.base_model_repositories):
    its card, the files of `main` with their sizes, and the adapters built on it."""

    def get(self, request, name, namespace=None):
        full_name = f"{namespace}/{name}" if namespace else name
        repository = self.hosted_base_model(full_name)
        if repository is None:
            raise Http404(f"The hub hosts no base model {full_name}, or it is private.")
        main = repository.revisions.newest_first().prefetch_related(
            Prefetch("files", queryset=ModelRevisionFile.objects.select_related("blob"))
        )[0]
        files = list(main.files.all())
        readme = next((file for file in files if file.name == README_FILE), None)
        adapters = self.listed_adapters().list_rows().filter(base_model__model_name=full_name)
        context = {
            "repository": repository,
            "main": main,
            "files": files,
            "total_size": sum(file.blob.size for file in files),
            # The card as text (escaped by the template), cut to a page's length.
            "card": read_blob(readme.blob)[:README_SHOWN_BYTES].decode(errors="replace") if readme else "",
            "adapters": adapters.order_by("-download_count", "name")[:HOME_LIST_SIZE],
            "load_snippet": (
                f'import os\nos.environ["HF_ENDPOINT"] = "{public_base_url(request)}"  # before transformers\n\n'
                "from transformers import AutoModel, AutoTokenizer\n\n"
                f'model = AutoModel.from_pretrained("{full_name}")\n'
                f'tokenizer = AutoTokenizer.from_pretrained("{full_name}")'
            ),
        }
        return render(request, "frontend/base_model_detail.html", context)


class ArchitectureListPage(AdapterPageView):
    def get(self, request):
        architectures = Architecture.objects.order_by("-builtin", "name")
        adapter_counts = dict(
            self.visible_adapters()
            .order_by()
            .values_list("architecture_name")
            .annotate(count=Count("id"))
            .values_list("architecture_name", "count")
        )
        rows = [
            {
                "architecture": architecture,
                "adapter_count": adapter_counts.get(architecture.name, 0),
                "summary": describe_layer(plan_layer(architecture.config)),
            }
            for architecture in architectures
        ]
        return render(request, "frontend/architecture_list.html", {"rows": rows})


class ArchitecturePage(AdapterPageView):
    def get(self, request, name):
        architecture = find_architecture(name)
        if architecture is None:
            raise Http404(f"There is no architecture {name!r}.")
        if architecture.name != name:  # an alias (`seq_bn`): the page lives under the canonical name
            return redirect("frontend:architecture-detail", architecture.name)
        adapters = (
            self.listed_adapters()
            .list_rows()
            .filter(architecture_name=architecture.name)
            .order_by("-download_count", "name")[:HOME_LIST_SIZE]
        )
        return _architecture_page(request, architecture, adapters)


def _architecture_page(request, architecture, adapters):
    context = {
        "architecture": architecture,
        "config_rows": config_rows(architecture.config),
        "diagram": layer_diagram(
            architecture.config, title=f"The {architecture.name} architecture in one layer"
        ),
        "diagram_text": describe_layer(plan_layer(architecture.config)),
        "load_snippets": config_load_snippets(architecture.name, architecture.config, architecture.method),
        "key_values": key_values(architecture.config, architecture.method),
        "adapters": adapters,
    }
    return render(request, "frontend/architecture_detail.html", context)


# --------------------------------------------------------------------------------------------------
# Account pages
# --------------------------------------------------------------------------------------------------


@login_required
def tokens(request):
    """List the user's API tokens and create new ones; a new token's secret is shown once, in this response."""
    new_token = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            _, new_token = create_token(
                request.user,
                scope=form.cleaned_data["scope"],
                name=form.cleaned_data["name"],
                expires_at=form.expires_at(),
            )
            form = TokenForm()
    else:
        form = TokenForm()
    user_tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")
    return render(
        request, "frontend/tokens.html", {"form": form, "tokens": user_tokens, "new_token": new_token}
    )


@login_required
@require_POST
def revoke_token(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        messages.success(
            request, f"Token {token.key_prefix}… is revoked; clients using it are refused from now on."
        )
    return redirect("frontend:tokens")


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@csrf_exempt  # the upload handler must be set before the CSRF check reads the body; checked just below
@login_required
def upload(request):
    """The upload form. Files arrive hashed while they stream in; the registry's `create_version` stores them
    and queues the validation. The page's script sends the form with a progress bar and then follows the
    version's status through the REST API; without the script, the form posts and redirects."""
    if request.method == "POST":
        request.upload_handlers = [HashingUploadHandler(request)]
        return _upload_post(request)
    return _upload_form(request, UploadForm(namespaces=writable_namespaces(request.user)))


def _upload_form(request, form, status=200):
    return render(request, "frontend/upload.html", {"form": form}, status=status)


@csrf_protect
def _upload_post(request):
    form = UploadForm(request.POST, request.FILES, namespaces=writable_namespaces(request.user))
    oversize = [
        name for handler in request.upload_handlers for name in getattr(handler, "oversize_files", [])
    ]
    if oversize:
        limit = settings.ADAPTERHUB_MAX_FILE_SIZE
        form.add_error(None, f"{', '.join(oversize)} exceed the limit of {limit} bytes per file.")
    result = None
    if form.is_valid() and not oversize:
        try:
            result = form.save(request.user)
        except RegistryError as exc:
            form.add_error(form.field_for(exc.field), exc.message)
    if result is None:
        if wants_json(request):
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        return _upload_form(request, form, status=400)
    version = result.version
    adapter = version.adapter
    adapter_url = reverse("frontend:adapter-detail", args=[adapter.namespace.name, adapter.name])
    status_url = reverse("api:version-detail", args=[adapter.namespace.name, adapter.name, version.version])
    if wants_json(request):
        return JsonResponse(
            {
                "adapter": adapter.full_name,
                "version": version.version,
                "status": version.status,
                "created": result.created,
                "status_url": status_url,
                "adapter_url": adapter_url,
            },
            status=202 if result.created else 200,
        )
    messages.success(
        request,
        f"Version {version.version} of {adapter.full_name} is uploaded; its validation is {version.status}.",
    )
    return redirect(adapter_url)
