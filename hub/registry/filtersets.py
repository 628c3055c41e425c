"""The one filter set for adapter lists: the REST list (`/api/v1/adapters/`) and the web UI's list page use
the same query parameters (`task`, `subtask`, `type`, `language`, `model_name`, `model_type`,
`architecture`, `method`, `namespace`, `status`, `tag`, `q`, `sort`). Both feed it the one list query,
`Adapter.objects.listed_to(user)`; `q` searches (hub.registry.search), and a list with `q` is sorted by
relevance unless another order is asked for.

Lists are bounded (`check_page_bounds`): at most MAX_PAGE_SIZE rows a page and no page past MAX_LIST_OFFSET
rows; the cost of deep pages grows with the offset, and a person narrows the list with filters instead."""

import django_filters
from django.core.cache import cache
from django.core.paginator import EmptyPage, Paginator
from django.db.models import Q
from django.utils.functional import cached_property

from hub.compat.huggingface.representations import tag_condition
from hub.registry.caching import cache_key, registry_generation
from hub.registry.choices import AdapterType, VersionStatus
from hub.registry.compiled_queries import values_query
from hub.registry.errors import BadRequest
from hub.registry.list_counts import list_count
from hub.registry.methods import method_choices
from hub.registry.models import Adapter, BaseModel, Namespace, Subtask, Task
from hub.registry.search import (
    are_every_match,
    by_relevance,
    matching,
    relevance_candidates,
    search_words,
    uses_full_text_search,
)

MAX_PAGE_SIZE = 100
MAX_LIST_OFFSET = 10_000
RELEVANCE = "relevance"
SORT_ORDERS = {
    # Ties (many adapters share a download count) broken by the adapter's name, then its namespace's id: columns
    # of adapters, so a page's ids are read without a join. Broken by the namespace's name, a deep page joined
    # every namespace to sort its filter's adapters: 43 of a 45 ms query for page 491 of a task and base model at
    # a million adapters, 100,000 namespaces hashed for it.
    "downloads": ("-download_count", "name", "namespace_id"),
    "recent": ("-updated_at", "-id"),
    # The adapter's name, then its namespace's id: both columns of adapters, so a list is read in this order
    # from the `(name, namespace)` index and stops after a page. Ties broken by the namespace's name (another
    # table's column, which no index of adapters holds) made PostgreSQL sort every match of a filter whole:
    # 120 ms to 1.4 s for a list of tens of thousands of matches at a million adapters.
    "name": ("name", "namespace_id"),
}
# The sort key that orders nothing within one namespace (see `AdapterFilterSet.qs`).
NAMESPACE_SORT_KEY = "namespace_id"


def _id_named(model, field: str, value: str) -> int | None:
    """The id of the `model` row whose unique `field` is `value`, None when there is none (a query compiled
    once per process: it runs for every named filter of every list)."""
    rows = values_query(
        ("id named", model._meta.label, field),
        lambda values: model.objects.filter(**{field: values["value"]}).values("pk")[:1],
        {"value": value},
    )
    return rows[0]["pk"] if rows else None


def _matching_id(queryset, column: str, row_id: int | None):
    """`queryset` where `column` is `row_id`; nothing when no row has the name (`row_id` None)."""
    return queryset.none() if row_id is None else queryset.filter(**{column: row_id})


def choice_filter(choices, **kwargs) -> django_filters.ChoiceFilter:
    """A ChoiceFilter whose error names the values it accepts."""
    accepted = ", ".join(value for value, _ in choices)
    message = f"%(value)s is not one of the accepted values: {accepted}."
    return django_filters.ChoiceFilter(choices=choices, error_messages={"invalid_choice": message}, **kwargs)


class AdapterFilterSet(django_filters.FilterSet):
    task = django_filters.CharFilter(method="filter_task", help_text="Task name, e.g. sentiment (or de)")
    subtask = django_filters.CharFilter(method="filter_subtask", help_text="Subtask name, e.g. sst-2")
    type = choice_filter(AdapterType.choices, help_text="text_task or text_lang")
    language = django_filters.CharFilter(
        method="filter_language", help_text="ISO code: the subtask's language or a language adapter's task"
    )
    model_name = django_filters.CharFilter(method="filter_model_name", help_text="e.g. bert-base-uncased")
    model_type = django_filters.CharFilter(field_name="base_model__model_type", help_text="e.g. bert")
    architecture = django_filters.CharFilter(field_name="architecture_name", help_text="e.g. pfeiffer")
    # The registered methods' families (read once: a process registers its methods when it starts).
    method = choice_filter(
        method_choices(), help_text="Method family: " + ", ".join(value for value, _ in method_choices())
    )
    namespace = django_filters.CharFilter(method="filter_namespace", help_text="Owner, e.g. ukp")
    status = choice_filter(
        VersionStatus.choices,
        help_text="valid (some version resolves), else the newest version's status",
    )
    # The tags the Hugging Face routes list for an adapter (`adapter_tags`), matched exactly as their
    # `list_models(filter=...)` matches them: the one definition of what a tag is.
    tag = django_filters.CharFilter(
        method="filter_tag", help_text="A tag of the adapter, e.g. bert, method:lora or license:mit"
    )
    # A choice, not a BooleanFilter: that one takes any other word for "both" without a word of error.
    deprecated = choice_filter(
        [("true", "true"), ("false", "false")],
        method="filter_deprecated",
        help_text="false: leave deprecated adapters out; true: only deprecated adapters (default: both)",
    )
    q = django_filters.CharFilter(
        method="filter_text",
        help_text="Words to find (as word prefixes) in the name, task, subtask, namespace, base model and "
        "description; results are sorted by relevance",
    )
    sort = choice_filter(
        [(key, key) for key in (RELEVANCE, *SORT_ORDERS)],
        method="filter_sort",
        empty_label=None,
        help_text="relevance (the default with q), downloads (most first; the default without q), recent "
        "(last updated first) or name",
    )

    class Meta:
        model = Adapter
        fields = [
            "task",
            "subtask",
            "type",
            "language",
            "model_name",
            "model_type",
            "architecture",
            "method",
            "namespace",
        ]

    def get_form_class(self):
        # django-filter builds a form class from the filters' form fields on every instance (about 0.3 ms of each
        # list answer); they are the same fields every time, and a form copies its class's fields when it is
        # made, so one class a process serves every request.
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            type(self)._form_class = form_class
        return form_class

    # Task, base model and namespace are named by a unique name: each is matched by the id of the row of that
    # name, read first (one indexed query) and put in the list query as a value. The list then reads its index in
    # sort order (`(task, base_model, -download_count)`, ...) and stops after a page; through a join the planner
    # cannot know that one row matches, and sorts every matching row (18,000 of a million, 366 ms). A value
    # rather than a subquery: the planner then knows how many adapters that id has (its statistics' most common
    # values), where for a subquery it assumes the average, and sorted all 56,000 adapters of the largest
    # namespace for its second page (500 ms).
    def filter_task(self, queryset, name, value):
        return _matching_id(queryset, "task_id", _id_named(Task, "name", value))

    def filter_model_name(self, queryset, name, value):
        return _matching_id(queryset, "base_model_id", _id_named(BaseModel, "model_name", value))

    def filter_namespace(self, queryset, name, value):
        return _matching_id(queryset, "namespace_id", _id_named(Namespace, "name", value))

    def filter_subtask(self, queryset, name, value):
        # A subtask name may be shared by several tasks (every language has "wiki"), so it names a few ids: they
        # are read first and the list matches them as values. The planner then knows how many adapters each
        # has; through a join on the name it guessed 17,000 of the 713,000 adapters of "wiki" at a million, and
        # sorted them all for a deep page (2.8 s) instead of walking the download index (60 ms).
        ids = list(Subtask.objects.filter(name=value).order_by().values_list("pk", flat=True))
        return queryset.filter(subtask_id__in=ids)

    def filter_language(self, queryset, name, value):
        return queryset.filter(Q(subtask__language=value) | Q(type=AdapterType.LANGUAGE, task__name=value))

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tag_condition(value))

    def filter_deprecated(self, queryset, name, value):
        # An adapter is deprecated while its message is not empty (hub.registry.deprecation).
        if value == "true":
            return queryset.exclude(deprecated_message="")
        return queryset.filter(deprecated_message="")

    def filter_text(self, queryset, name, value):
        return matching(queryset, value)

    def filter_sort(self, queryset, name, value):
        # Applied in `qs`, after every filter: relevance needs the query text.
        return queryset

    @property
    def sort_order(self) -> str:
        """The order of the list: the one asked for, else relevance with a query and downloads without."""
        query = self.form.cleaned_data.get("q")
        asked = self.form.cleaned_data.get("sort")
        if asked == RELEVANCE and not query:
            return "downloads"
        return asked or (RELEVANCE if query else "downloads")

    def unsorted_qs(self):
        """The filtered list before sorting (for counts and suggestions)."""
        return super().qs

    @cached_property
    def relevance_candidate_ids(self) -> list[int] | None:
        """With full-text search, the ids a search sorted by relevance ranks (hub.registry.search.
        relevance_candidates), read once for its page and its count (`CachedCountPaginator`); None for any
        other list."""
        if (
            self.sort_order != RELEVANCE
            or not uses_full_text_search()
            or not search_words(self.form.cleaned_data["q"])
        ):
            return None
        return relevance_candidates(super().qs, self.form.cleaned_data["q"])

    @property
    def qs(self):
        queryset = super().qs
        if self.sort_order == RELEVANCE:
            return by_relevance(
                queryset,
                self.form.cleaned_data["q"],
                rows_from=self.queryset,
                candidate_ids=self.relevance_candidate_ids,
            )
        order = SORT_ORDERS[self.sort_order]
        if self.form.cleaned_data.get("namespace"):
            # Within one namespace its id breaks no tie; left out, the order is one the `(namespace,
            # -download_count)` index or the unique `(namespace, name)` one holds, and a page is read from it in
            # order. (Broken by the namespace's name, through a join, PostgreSQL read and sorted every adapter of a
            # large namespace: 56,000 at a million, 500 ms for its second page.)
            order = tuple(field for field in order if field != NAMESPACE_SORT_KEY)
        return queryset.order_by(*order)


def check_page_bounds(page_number: int, page_size: int) -> None:
    """Raise BadRequest for a page larger than MAX_PAGE_SIZE or one starting past MAX_LIST_OFFSET rows."""
    if page_size > MAX_PAGE_SIZE:
        raise BadRequest(f"page_size may be at most {MAX_PAGE_SIZE} (asked: {page_size}).", field="page_size")
    if (page_number - 1) * page_size >= MAX_LIST_OFFSET:
        raise BadRequest(
            f"Lists end after {MAX_LIST_OFFSET:,} rows; page {page_number} of {page_size} rows starts beyond "
            "that. Narrow the list with filters or a search (q=) instead.",
            field="page",
        )


# Query parameters that choose a page of a list rather than the list.
PAGE_PARAMETERS = ("page", "page_size")


def list_identity(params, user) -> tuple:
    """What identifies a list (not its page): its query parameters and whose view it is (private adapters
    differ per user; membership changes start a new registry generation)."""
    items = sorted((key, values) for key, values in params.lists() if key not in PAGE_PARAMETERS)
    return (items, user.pk if user is not None and user.is_authenticated else None)


class CachedCountPaginator(Paginator):
    """A Paginator whose row count is bounded (`list_count`: exact up to EXACT_COUNT_LIMIT rows, the planner's
    estimate above, `count_is_estimate`) and cached per registry generation and list (`list_identity`):
    counting every matching row is the one part of a list page that grows with the catalogue.

    It counts `count_queryset` when given: a relevance search pages through its ranked candidates
    (hub.registry.search.by_relevance) and counts all its matches, from `candidate_ids` where they tell. With
    an estimated count any page within the list's bounds (`check_page_bounds`) is served, empty past the end;
    with an exact count a page past the end is an error, as Django's Paginator has it."""

    # Per process (the default cache), a count may lag a change made in another process by this long.
    COUNT_CACHE_SECONDS = 30

    def __init__(
        self,
        object_list,
        per_page,
        *,
        list_key: tuple,
        count_queryset=None,
        candidate_ids=None,
        read_rows_by_id=None,
        **kwargs,
    ):
        super().__init__(object_list, per_page, **kwargs)
        self.list_key = list_key
        self.count_queryset = object_list if count_queryset is None else count_queryset
        self.candidate_ids = candidate_ids
        # How a page's rows are read once their ids are known (see `_rows`): ids to rows, in any order. The REST
        # list reads dicts through a compiled query (hub.registry.api.list_rows.list_values_by_id); model
        # instances by default.
        self.read_rows_by_id = read_rows_by_id or (lambda ids: Adapter.objects.list_rows().filter(pk__in=ids))

    @cached_property
    def _counted(self) -> tuple[int, bool]:
        if self.count_queryset.query.is_empty():
            return 0, True
        key = cache_key("registry:list-rows", registry_generation(), self.list_key)
        counted = cache.get(key)
        if counted is None:
            counted = self._count()
            cache.set(key, counted, self.COUNT_CACHE_SECONDS)
        return tuple(counted)

    def _count(self) -> tuple[int, bool]:
        # A relevance search read its candidates already (`AdapterFilterSet.relevance_candidate_ids`): fewer than
        # RELEVANCE_CANDIDATES are every match, and a full set says how many there are at least, so the count
        # does not run the match again.
        found = self.candidate_ids
        if found is not None and are_every_match(found):
            return len(found), True
        return list_count(self.count_queryset, at_least=len(found or ()))

    @property
    def count(self) -> int:
        return self._counted[0]

    @property
    def count_is_estimate(self) -> bool:
        return not self._counted[1]

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if self.count_is_estimate and int(number) >= 1:
                return int(number)
            raise

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not self.count_is_estimate and top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self._rows(bottom, top), number, self)

    def _rows(self, bottom: int, top: int):
        # A page reads its rows' ids first, from the list (its filters and order, the columns they need), then
        # those rows by id with everything they show: an offset walks the rows it skips, and skipping ids is
        # cheaper than skipping rows with their joins and the current version's label. A relevance search's page
        # is a slice of its ranked candidates' ids. Rows by id are read from `Adapter.objects.list_rows()`,
        # without the list's filters (the ids passed them): weighing the visibility and status predicates (and a
        # search's 1,000 candidate ids) against every index of adapters made PostgreSQL plan the rows' query for
        # 3 ms at a million adapters, to run it in 1 ms; the REST list's query by id is also prepared once.
        if self.candidate_ids is not None:
            ids = self.candidate_ids[bottom:top]
        else:
            ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        # Model instances (the web UI) or dicts with their "id" (the REST list's `.values()`).
        rows = {row["id"] if isinstance(row, dict) else row.pk: row for row in self.read_rows_by_id(ids)}
        return [rows[pk] for pk in ids if pk in rows]
