"""django-q2 tasks of the reflections app (the daily schedule row names this module)."""


def delete_expired_handshakes() -> int:
    from reflections.services.handshakes import handshakes_delete_expired

    return handshakes_delete_expired()
