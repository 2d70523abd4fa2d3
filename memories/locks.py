"""Transaction-scoped advisory locks of a namespace.

``quotes_lock``: whatever copies a memory's text elsewhere (a handshake, a reflection's
hub preview) and whatever removes or rewrites such copies (a purge, a content edit) take
it for the namespace, so a copy composed from the old text is never saved after the
purge or edit has scrubbed the copies. Held until the surrounding transaction ends.
"""

from django.db import connection, transaction


def quotes_lock(namespace: str) -> None:
    """Wait for, then hold until commit, the namespace's quotes lock (inside ``transaction.atomic``)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("quotes_lock needs a transaction")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"anima:quotes:{namespace}"])
