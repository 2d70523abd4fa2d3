"""Writes, one module per concept; each module's docstring says what it owns. The query's
rule is ``memories.ranking`` and its reads ``memories.search``; here ``querying``
(``memory_query``) orchestrates them, ``access`` counts an access, ``tiers`` owns every
tier change (the promotion rule, the audit rows), ``adding`` the one insert path."""
