"""The reflections app; on start it connects its receivers to memories' signals."""

from django.apps import AppConfig


class ReflectionsConfig(AppConfig):
    name = "reflections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from reflections import receivers

        receivers.connect()
