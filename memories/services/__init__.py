"""Writes. One module per concept: ``access`` (the access effects and the one promotion
rule), ``adding`` (``memory_add``), ``querying`` (``memory_query``)."""
