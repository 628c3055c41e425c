"""The one filter set for adapter lists: the REST list (`/api/v1/adapters/`) and the web UI's list page use
the same query parameters (`task`, `subtask`, `type`, `language`, `model_name`, `model_type`,
`architecture`, `method`, `namespace`, `status`, `q`, `sort`). Both feed it the one list query,
`Adapter.objects.for_list(user)`, whose `status` annotation the status filter reads."""

import django_filters
from django.db.models import Q

from hub.registry.choices import AdapterType, MethodFamily, VersionStatus
from hub.registry.models import Adapter

SORT_ORDERS = {
    "downloads": ("-download_count", "namespace__name", "name"),
    "recent": ("-updated_at", "-id"),
    "name": ("namespace__name", "name"),
}


class AdapterFilterSet(django_filters.FilterSet):
    task = django_filters.CharFilter(field_name="task__name", help_text="Task name, e.g. sentiment (or de)")
    subtask = django_filters.CharFilter(field_name="subtask__name", help_text="Subtask name, e.g. sst-2")
    type = django_filters.ChoiceFilter(choices=AdapterType.choices, help_text="text_task or text_lang")
    language = django_filters.CharFilter(
        method="filter_language", help_text="ISO code: the subtask's language or a language adapter's task"
    )
    model_name = django_filters.CharFilter(
        field_name="base_model__model_name", help_text="e.g. bert-base-uncased"
    )
    model_type = django_filters.CharFilter(field_name="base_model__model_type", help_text="e.g. bert")
    architecture = django_filters.CharFilter(field_name="architecture_name", help_text="e.g. pfeiffer")
    method = django_filters.ChoiceFilter(
        choices=MethodFamily.choices, help_text="Method family: " + ", ".join(MethodFamily.values)
    )
    namespace = django_filters.CharFilter(field_name="namespace__name", help_text="Owner, e.g. ukp")
    status = django_filters.ChoiceFilter(
        choices=VersionStatus.choices,
        method="filter_status",
        help_text="valid (some version resolves), else the newest version's status",
    )
    q = django_filters.CharFilter(
        method="filter_text", help_text="Words to find in the name, description, task and subtask"
    )
    sort = django_filters.ChoiceFilter(
        method="filter_sort",
        choices=[(key, key) for key in SORT_ORDERS],
        empty_label=None,
        help_text="downloads (most first), recent (last updated first) or name",
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

    def filter_language(self, queryset, name, value):
        return queryset.filter(Q(subtask__language=value) | Q(type=AdapterType.LANGUAGE, task__name=value))

    def filter_status(self, queryset, name, value):
        return queryset.filter(status=value)

    def filter_text(self, queryset, name, value):
        for word in value.split():
            queryset = queryset.filter(
                Q(name__icontains=word)
                | Q(description__icontains=word)
                | Q(task__name__icontains=word)
                | Q(task__display_name__icontains=word)
                | Q(subtask__name__icontains=word)
                | Q(subtask__display_name__icontains=word)
                | Q(namespace__name__iexact=word)
            )
        return queryset

    def filter_sort(self, queryset, name, value):
        return queryset.order_by(*SORT_ORDERS[value])

    @property
    def qs(self):
        queryset = super().qs
        if not self.form.cleaned_data.get("sort"):
            queryset = queryset.order_by(*SORT_ORDERS["downloads"])
        return queryset
