"""The meta app: the operations layer (see the package docstring)."""

from django.apps import AppConfig


class MetaConfig(AppConfig):
    name = "meta"
    default_auto_field = "django.db.models.BigAutoField"
