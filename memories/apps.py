from django.apps import AppConfig


class MemoriesConfig(AppConfig):
    name = "memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created

        from anima_site.db import fast_timestamptz_loader
        from memories import checks  # noqa: F401  (registers the system checks)
        from memories.search import hnsw_session_defaults

        # The first app with models connects the site's session set-up (anima_site has no AppConfig).
        connection_created.connect(fast_timestamptz_loader, dispatch_uid="anima-fast-timestamptz")
        connection_created.connect(hnsw_session_defaults, dispatch_uid="anima-hnsw-session-defaults")
