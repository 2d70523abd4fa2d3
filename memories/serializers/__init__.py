"""HTTP shapes of the memories app, a module per concept — ``memories`` (the resource: add,
add-batch, list, get, PATCH, DELETE, restore; ``MemoryOutput``), ``recall`` (query,
feedback), ``bootstrap``, ``tiers``, ``resonance`` (catalysts, φ stats), ``associations``,
``namespaces``, and ``fields`` (what several share). Output serializers are the OpenAPI
shapes the views render with. The generic JSON fields are ``anima_site.serializers``."""
