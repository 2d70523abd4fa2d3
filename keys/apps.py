"""The keys app; on start it connects its receiver of ``namespace_purged`` (``anima_site.signals``)."""

from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from keys import receivers

        receivers.connect()
