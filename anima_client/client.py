"""``AnimaClient``: the synchronous client (``async_client.AsyncAnimaClient`` is its
twin). Routes, bodies and parsing live in ``_api``; the clients send, retry
(``retry.RetryPolicy``) and raise the typed errors of ``errors``.

    with AnimaClient() as anima:                      # ANIMA_URL, ANIMA_API_KEY
        anima.add("Dana is allergic to peanuts.", category="health")
        for hit in anima.query("What should Dana not eat?").memories:
            print(hit.similarity, hit.content)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

import httpx

from anima_client import _api
from anima_client import config
from anima_client import models as m
from anima_client._api import UNSET, Call
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
    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        namespace: str | None,
        retry: RetryPolicy | None,
        max_retries: int | None,
        headers: Mapping[str, str] | None,
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={'set' if self.api_key else 'unset'})"

    @staticmethod
    def _request_kwargs(call: Call[Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": call.params}
        if call.json is not None:
            kwargs["json"] = call.json
        return kwargs

    def _give_up(self, call: Call[Any], error: httpx.TransportError, attempts: int) -> AnimaConnectionError:
        return AnimaConnectionError(
            f"No answer from {self.base_url} for {call.method} {call.path} after {attempts} attempt(s): "
            f"{type(error).__name__}: {error}",
            code="CONNECTION_ERROR",
        )


class AnimaClient(_BaseClient):
    """A synchronous client. ``base_url`` defaults to ``ANIMA_URL`` (else
    http://127.0.0.1:8000), ``api_key`` to ``ANIMA_API_KEY``."""

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
        transport: httpx.BaseTransport | None = None,
    ):
        super().__init__(
            base_url, api_key, namespace=namespace, retry=retry, max_retries=max_retries, headers=headers
        )
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport)
        self.associations = Associations(self)
        self.handshake = Handshakes(self)
        self.memories = Memories(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AnimaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        retry_no = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **self._request_kwargs(call))
            except httpx.TransportError as error:
                delay = self.retry.delay_after_error(retry_no, error, idempotent=call.idempotent)
                if delay is None:
                    raise self._give_up(call, error, retry_no + 1) from error
                logger.info("%s %s: %s; retry %d in %.2fs", call.method, call.path, type(error).__name__, retry_no + 1, delay)
            else:
                delay = None if response.status_code in call.accept else self.retry.delay_after_response(retry_no, response)
                if delay is None:
                    return _api.read_response(call, response)
                logger.info("%s %s: HTTP %d; retry %d in %.2fs", call.method, call.path, response.status_code, retry_no + 1, delay)
            sleep(delay)
            retry_no += 1

    # --- memories ---------------------------------------------------------------------------

    def add(
        self,
        content: str,
        *,
        category: str | None = None,
        tags: Sequence[str] | None = None,
        source: str | None = None,
        is_catalyst: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
        occurred_at: datetime | date | str | None = None,
    ) -> m.AddResult:
        """Store a memory; an identical content answers the existing one (``is_duplicate``)."""
        return self._run(
            _api.add(
                content, category=category, tags=tags, source=source, is_catalyst=is_catalyst, metadata=metadata,
                occurred_at=occurred_at,
            )
        )

    def add_batch(self, items: Sequence[str | Mapping[str, Any]]) -> m.AddBatchResult:
        """Store 1–100 memories in one request: each item a content string or a mapping of
        ``add``'s keywords (``content``, ``category``, ``tags``, ``source``, ``is_catalyst``,
        ``metadata``). Every item's outcome comes back in order (``created``, ``duplicate``
        or ``invalid`` with ``field`` and ``message``); an invalid item does not stop the others."""
        return self._run(_api.add_batch(items))

    def query(
        self,
        query: str,
        *,
        limit: int | None = None,
        threshold: float | None = None,
        tiers: Sequence[str] | None = None,
        conversation_id: str | None = None,
        category: str | None = None,
        tags: Sequence[str] | None = None,
        mode: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: str | None = None,
        created_after: datetime | date | str | None = None,
        created_before: datetime | date | str | None = None,
        last_accessed_after: datetime | date | str | None = None,
        recency_half_life_days: float | None = None,
        occurred_after: datetime | date | str | None = None,
        occurred_before: datetime | date | str | None = None,
    ) -> m.QueryResult:
        """Find memories by meaning (``mode="hybrid"`` adds full-text matches). With a
        ``conversation_id`` the hits' co-occurrence is recorded.

        Filters: ``metadata`` (the memory's metadata contains this object), ``source``,
        ``created_after`` (inclusive) / ``created_before`` (exclusive), ``last_accessed_after``
        — datetimes, dates or ISO 8601 strings. ``recency_half_life_days`` multiplies each
        weight by ``0.5 ** (days since last access / half-life)``."""
        return self._run(
            _api.query(
                query, limit=limit, threshold=threshold, tiers=tiers, conversation_id=conversation_id,
                category=category, tags=tags, mode=mode, metadata=metadata, source=source,
                created_after=created_after, created_before=created_before,
                last_accessed_after=last_accessed_after, recency_half_life_days=recency_half_life_days,
                occurred_after=occurred_after, occurred_before=occurred_before,
            )
        )

    def feedback(
        self, memory_ids: Sequence[str | UUID], useful: bool = True, conversation_id: str | None = None
    ) -> m.FeedbackResult:
        """Say that recalled memories helped (``useful=True``: each one's φ goes up one step,
        0.5) or misled (``useful=False``: down one step), within [0, 5]; each mark counts as
        an access. Ids that match no live memory of the namespace come back in
        ``not_found``, unchanged. Needs a write key."""
        return self._run(_api.feedback(memory_ids, useful=useful, conversation_id=conversation_id))

    def bootstrap(
        self,
        *,
        limit: int | None = None,
        include_active: bool | None = None,
        include_thread: bool | None = None,
        include_stable: bool | None = None,
        active_limit: int | None = None,
        max_chars: int | None = None,
        conversation_id: str | None = None,
    ) -> m.Bootstrap:
        """The conversation-start context: memories by tier and the tier distribution."""
        return self._run(
            _api.bootstrap(
                limit=limit, include_active=include_active, include_thread=include_thread,
                include_stable=include_stable, active_limit=active_limit, max_chars=max_chars,
                conversation_id=conversation_id,
            )
        )

    def update_tier(self, memory_id: str | UUID, tier: str, *, reason: str | None = None) -> m.TierChange:
        return self._run(_api.update_tier(memory_id, tier, reason=reason))

    def catalysts(self, *, limit: int | None = None) -> m.Catalysts:
        return self._run(_api.catalysts(limit=limit))

    def stats(self) -> m.PhiStats:
        return self._run(_api.stats())

    # --- reflections ------------------------------------------------------------------------

    def conversation_end(self, conversation_id: str, session_metrics: Mapping[str, Any] | None = None) -> m.MetaReflection:
        """The service's reflection on a finished conversation from its session metrics."""
        return self._run(_api.conversation_end(conversation_id, session_metrics))

    def conversation_reflection(
        self,
        conversation_id: str,
        *,
        context_quality: int | None = None,
        continuity_score: int | None = None,
        needed_correction: bool | None = None,
        had_emergence_moment: bool | None = None,
        surprises: str | None = None,
        friction_notes: str | None = None,
        general_notes: str | None = None,
    ) -> m.ConversationReflection:
        """Record how a conversation felt (scores 1–10, notes)."""
        return self._run(
            _api.conversation_reflection(
                conversation_id, context_quality=context_quality, continuity_score=continuity_score,
                needed_correction=needed_correction, had_emergence_moment=had_emergence_moment,
                surprises=surprises, friction_notes=friction_notes, general_notes=general_notes,
            )
        )

    def purge_namespace(self, *, confirm: str) -> m.NamespacePurge:
        """Remove everything of the key's namespace (or ``namespace=``'s) for good — memories,
        associations, reflections, handshakes and its API keys (this key too, when it belongs
        to it). ``confirm`` must be that namespace's name. Needs an admin key."""
        return self._run(_api.namespace_purge(confirm=confirm))

    def health(self) -> m.Health:
        """``GET /health`` (no key needed); a failing check is ``health.ok == False``, not an error."""
        return self._run(_api.health())


class Associations:
    def __init__(self, client: AnimaClient):
        self._client = client

    def discover(self, memory_id: str | UUID, *, min_strength: float | None = None, limit: int | None = None) -> m.Associations:
        return self._client._run(_api.associations_discover(memory_id, min_strength=min_strength, limit=limit))

    def hubs(self, *, limit: int | None = None, min_connections: int | None = None) -> m.Hubs:
        return self._client._run(_api.associations_hubs(limit=limit, min_connections=min_connections))

    def network_stats(self, memory_id: str | UUID) -> m.NetworkStats:
        return self._client._run(_api.associations_network_stats(memory_id))


class Handshakes:
    def __init__(self, client: AnimaClient):
        self._client = client

    def get(self) -> m.Handshake:
        """The current handshake (made when none is younger than 24 h)."""
        return self._client._run(_api.handshake_get())

    def generate(self, *, force: bool = True) -> m.Handshake:
        return self._client._run(_api.handshake_generate(force=force))

    def history(self, *, limit: int | None = None) -> m.HandshakeHistory:
        return self._client._run(_api.handshake_history(limit=limit))


class Memories:
    def __init__(self, client: AnimaClient):
        self._client = client

    def get(self, memory_id: str | UUID) -> m.Memory:
        return self._client._run(_api.memory_get(memory_id))

    def patch(
        self,
        memory_id: str | UUID,
        *,
        content: str = UNSET,
        category: str | None = UNSET,
        tags: Sequence[str] = UNSET,
        source: str | None = UNSET,
        metadata: Mapping[str, Any] = UNSET,
        is_catalyst: bool = UNSET,
        pinned: bool = UNSET,
        occurred_at: datetime | date | str = UNSET,
    ) -> m.MemoryUpdate:
        """Change the fields given (``category=None`` clears it); new content is re-embedded.
        ``pinned=True``: the memory opens every bootstrap and never decays."""
        return self._client._run(
            _api.memory_patch(
                memory_id, content=content, category=category, tags=tags, source=source, metadata=metadata,
                is_catalyst=is_catalyst, pinned=pinned, occurred_at=occurred_at,
            )
        )

    def delete(self, memory_id: str | UUID) -> m.DeletedMemory:
        """Soft delete (``restore`` brings it back)."""
        return self._client._run(_api.memory_delete(memory_id))

    def purge(self, memory_id: str | UUID) -> m.PurgedMemory:
        """Remove the memory for good (not restorable): its row, embedding, associations, the
        memories merged into it and every copy of its text (``result.counts``)."""
        return self._client._run(_api.memory_purge(memory_id))

    def restore(self, memory_id: str | UUID) -> m.MemoryUpdate:
        return self._client._run(_api.memory_restore(memory_id))

    def list(
        self,
        *,
        tier: str | None = None,
        category: str | None = None,
        tags: Sequence[str] | None = None,
        is_catalyst: bool | None = None,
        source: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        ordering: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.MemoryPage:
        """One page; pass ``page.next_cursor`` as ``cursor`` for the next."""
        return self._client._run(
            _api.memories_list(
                tier=tier, category=category, tags=tags, is_catalyst=is_catalyst, source=source,
                created_after=created_after, created_before=created_before, ordering=ordering, limit=limit,
                cursor=cursor,
            )
        )
