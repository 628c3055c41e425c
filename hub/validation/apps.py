from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "hub.validation"
    label = "validation"
    verbose_name = "Adapter validation"
