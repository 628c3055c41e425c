from django.apps import AppConfig


class XetConfig(AppConfig):
    name = "hub.compat.xet"
    label = "xet"
    verbose_name = "Xet storage for the Hugging Face clients"
