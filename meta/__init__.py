"""The operations layer: health, supervision of the task cluster, the service's own
statistics (cache, database, queue), Prometheus' collector and ``/metrics``, and the
serve/soak/ensure_superuser/embedding_cache_cost commands.

It sits above every app (it may import memories, keys and reflections; none imports it);
only ``anima_site.urls`` imports it. Its label stays ``meta``: its migrations made the
tables that keys and reflections now own.
"""
