from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "hub.registry"
    label = "registry"
    verbose_name = "Adapter registry"

    def ready(self):
        from hub.registry import signals  # noqa: F401  (connects the handlers)
        from hub.registry.api import schema  # noqa: F401  (registers the Bearer scheme with drf-spectacular)
