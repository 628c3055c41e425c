"""The base view of the web UI's pages that show adapters, and the one place the UI applies privacy: such a
page derives from `AdapterPageView` and reads adapters through it. No other page asks the query layer for
visibility itself (tests/hub/test_privacy_is_applied_once.py)."""

from django.http import Http404
from django.views import View

from hub.registry.models import Adapter, ModelRepository


class AdapterPageView(View):
    """A page that shows adapters: only those the visitor may see exist for it. Pages answer GET (and HEAD)."""

    http_method_names = ["get", "head"]

    def visible_adapters(self):
        """Adapters the visitor may see."""
        return Adapter.objects.visible_to(self.request.user)

    def listed_adapters(self):
        """Adapters listed to the visitor (`listed_to`): what a list's filters and orders start from. A page
        that shows them reads what a row shows with `.list_rows()`; the adapter list reads its page's rows by id
        (hub.registry.filtersets.CachedCountPaginator)."""
        return Adapter.objects.listed_to(self.request.user)

    def get_adapter(self, namespace: str, name: str, prepare=None) -> Adapter:
        """The adapter `namespace/name` if the visitor may see it, with `prepare(adapters)` applied to the
        visible adapters first (the joins and prefetches the page needs); 404, the same for a missing and a
        private adapter, otherwise."""
        adapters = self.visible_adapters()
        if prepare is not None:
            adapters = prepare(adapters)
        adapter = adapters.named(namespace, name).first()
        if adapter is None:
            raise Http404(f"There is no adapter {namespace}/{name}, or it is private.")
        return adapter

    def visible_model_repositories(self):
        """Base-model repositories (hub.registry.base_model_repositories) the visitor may see, with a revision."""
        return (
            ModelRepository.objects.visible_to(self.request.user)
            .served()
            .select_related("namespace", "base_model")
        )

    def hosted_base_model(self, model_name: str) -> ModelRepository | None:
        """The base-model repository named `model_name` (`bert-base-uncased` or `org/name`) if the hub hosts it
        and the visitor may see it."""
        namespace, _, name = model_name.rpartition("/")
        return self.visible_model_repositories().named(namespace or None, name).first()
