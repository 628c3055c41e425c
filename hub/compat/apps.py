from django.apps import AppConfig


class CompatConfig(AppConfig):
    name = "hub.compat"
    label = "compat"
    verbose_name = "AdapterHub index and Hugging Face Hub compatibility"
