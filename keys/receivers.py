"""How keys answers ``namespace_purged`` (sent by memories' namespace purge; the contract is
in ``memories.signals``): the namespace's API keys go, so that no key is left to act in it."""

from anima_site.signals import namespace_purged
from keys.services import api_keys_forget_namespace


def on_namespace_purged(sender, *, namespace: str, **kwargs) -> dict[str, int]:
    return {"apiKeys": api_keys_forget_namespace(namespace=namespace)}


def connect() -> None:
    namespace_purged.connect(on_namespace_purged, dispatch_uid="keys.namespace_purged")
