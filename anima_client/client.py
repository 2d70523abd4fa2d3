"""``AnimaClient``: the synchronous client (``async_client.AsyncAnimaClient`` is its
twin). Routes, bodies, parsing — and each method's signature and docstring — live once in
``_api``; a client method is one line (``query = sync_method(_api.query)``). The clients
send, retry (``retry.RetryPolicy``) and raise the typed errors of ``errors``.

    with AnimaClient() as anima:                      # ANIMA_URL, ANIMA_API_KEY
        old = anima.add("Dana is allergic to peanuts.", category="health").memory
        for hit in anima.query("What should Dana not eat?").memories:
            print(hit.similarity, hit.content)
        anima.correct(old.id, "Dana is no longer allergic to peanuts.")   # old: superseded
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx

from anima_client import _api
from anima_client import config
from anima_client._api import Call, sync_method
from anima_client.errors import AnimaConnectionError
from anima_client.retry import RetryPolicy

T = TypeVar("T")

__version__ = "0.1.0"
USER_AGENT = f"anima-client/{__version__}"
DEFAULT_TIMEOUT = 30.0

logger = logging.getLogger("anima_client")


def sleep(seconds: float) -> None:
    """The retry wait (a module function so tests can observe it)."""
    time.sleep(seconds)


class _BaseClient:
    """What both clients share: the arguments, headers, retry policy and method groups;
    each names its ``httpx`` client class and its method-group classes."""

    _http_class: type
    _parts: tuple[type, type, type]  # associations, handshake, memories

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        namespace: str | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = config.base_url(base_url)
        self.api_key = config.api_key(api_key)
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = dataclasses.replace(policy, max_retries=max_retries)
        self.retry = policy
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        if self.api_key:
            self._headers["Authorization"] = f"Bearer {self.api_key}"
        if namespace:
            # Only an admin-scope key may act in another namespace.
            self._headers["X-Anima-Namespace"] = namespace
        self._http = self._http_class(base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport)
        associations, handshake, memories = self._parts
        self.associations = associations(self)
        self.handshake = handshake(self)
        self.memories = memories(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={'set' if self.api_key else 'unset'})"

    @staticmethod
    def _request_kwargs(call: Call[Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": call.params}
        if call.json is not None:
            kwargs["json"] = call.json
        return kwargs

    def _outcome(
        self, call: Call[Any], attempt: int, response: httpx.Response | None, error: httpx.TransportError | None
    ) -> tuple[bool, Any]:
        """The retry rule for one attempt's response or error, without I/O (both clients'
        loops call it): ``(True, result)`` when done, ``(False, seconds)`` to wait and try
        again; raises the typed error when the policy gives up."""
        if response is None:
            assert error is not None
            delay = self.retry.delay_after_error(attempt, error, idempotent=call.idempotent)
            if delay is None:
                raise AnimaConnectionError(
                    f"No answer from {self.base_url} for {call.method} {call.path} after {attempt + 1} attempt(s): "
                    f"{type(error).__name__}: {error}",
                    code="CONNECTION_ERROR",
                ) from error
            logger.info("%s %s: %s; retry %d in %.2fs", call.method, call.path, type(error).__name__, attempt + 1, delay)
            return False, delay
        delay = None if response.status_code in call.accept else self.retry.delay_after_response(attempt, response)
        if delay is None:
            return True, _api.read_response(call, response)
        logger.info("%s %s: HTTP %d; retry %d in %.2fs", call.method, call.path, response.status_code, attempt + 1, delay)
        return False, delay


class AnimaClient(_BaseClient):
    """A synchronous client. ``base_url`` defaults to ``ANIMA_URL`` (else
    http://127.0.0.1:8000), ``api_key`` to ``ANIMA_API_KEY``."""

    _http_class = httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AnimaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response, error = self._http.request(call.method, call.path, **self._request_kwargs(call)), None
            except httpx.TransportError as caught:
                response, error = None, caught
            done, outcome = self._outcome(call, attempt, response, error)
            if done:
                return outcome
            sleep(outcome)
            attempt += 1

    # --- memories ---------------------------------------------------------------------------

    add = sync_method(_api.add)
    add_batch = sync_method(_api.add_batch)
    correct = sync_method(_api.memory_correct)
    query = sync_method(_api.query)
    feedback = sync_method(_api.feedback)
    bootstrap = sync_method(_api.bootstrap)
    update_tier = sync_method(_api.update_tier)
    catalysts = sync_method(_api.catalysts)
    stats = sync_method(_api.stats)

    # --- reflections ------------------------------------------------------------------------

    conversation_end = sync_method(_api.conversation_end)
    conversation_reflection = sync_method(_api.conversation_reflection)
    purge_namespace = sync_method(_api.namespace_purge)
    health = sync_method(_api.health)


class _Part:
    """A group of methods under a client attribute (``anima.memories.get``): its calls run
    on the client (a coroutine for the async client, awaited by the method)."""

    def __init__(self, client: Any):
        self._client = client

    def _run(self, call: Call[T]) -> Any:
        return self._client._run(call)


class Associations(_Part):
    discover = sync_method(_api.associations_discover)
    hubs = sync_method(_api.associations_hubs)
    network_stats = sync_method(_api.associations_network_stats)


class Handshakes(_Part):
    get = sync_method(_api.handshake_get)
    generate = sync_method(_api.handshake_generate)
    history = sync_method(_api.handshake_history)


class Memories(_Part):
    get = sync_method(_api.memory_get)
    patch = sync_method(_api.memory_patch)
    delete = sync_method(_api.memory_delete)
    purge = sync_method(_api.memory_purge)
    restore = sync_method(_api.memory_restore)
    list = sync_method(_api.memories_list)


AnimaClient._parts = (Associations, Handshakes, Memories)
