"""Reads that change nothing, a module per concept: ``memories`` (one memory, the list
page, not-found, similar memories, variants), ``bootstrap``, ``tiers`` (counts, history),
``resonance`` (catalysts, φ statistics), ``associations``. Each returns model instances
or dataclasses; the output serializers turn those into the API's shapes."""
