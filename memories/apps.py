from django.apps import AppConfig


class MemoriesConfig(AppConfig):
    name = "memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created

        from memories import checks  # noqa: F401  (registers the system checks)
        from memories.search import hnsw_session_defaults

        connection_created.connect(hnsw_session_defaults, dispatch_uid="anima-hnsw-session-defaults")
