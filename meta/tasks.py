"""django-q2 tasks of the meta app."""

from meta.services.handshakes import handshakes_delete_expired


def delete_expired_handshakes() -> int:
    return handshakes_delete_expired()
