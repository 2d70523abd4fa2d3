"""``AsyncAnimaClient``: the asynchronous twin of ``AnimaClient`` — the same methods,
arguments and results, awaited (asyncio or trio, through httpx)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

import anyio
import httpx

from anima_client import _api
from anima_client import models as m
from anima_client._api import UNSET, Call
from anima_client.client import DEFAULT_TIMEOUT, _BaseClient
from anima_client.retry import RetryPolicy

T = TypeVar("T")

logger = logging.getLogger("anima_client")


async def async_sleep(seconds: float) -> None:
    """The retry wait (a module function so tests can observe it)."""
    await anyio.sleep(seconds)


class AsyncAnimaClient(_BaseClient):
    """An asynchronous client; see ``AnimaClient`` for the arguments and methods."""

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
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        super().__init__(
            base_url, api_key, namespace=namespace, retry=retry, max_retries=max_retries, headers=headers
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )
        self.associations = AsyncAssociations(self)
        self.handshake = AsyncHandshakes(self)
        self.memories = AsyncMemories(self)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAnimaClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        retry_no = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, **self._request_kwargs(call))
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
            await async_sleep(delay)
            retry_no += 1

    async def add(
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
        return await self._run(
            _api.add(
                content, category=category, tags=tags, source=source, is_catalyst=is_catalyst, metadata=metadata,
                occurred_at=occurred_at,
            )
        )

    async def add_batch(self, items: Sequence[str | Mapping[str, Any]]) -> m.AddBatchResult:
        return await self._run(_api.add_batch(items))

    async def query(
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
        return await self._run(
            _api.query(
                query, limit=limit, threshold=threshold, tiers=tiers, conversation_id=conversation_id,
                category=category, tags=tags, mode=mode, metadata=metadata, source=source,
                created_after=created_after, created_before=created_before,
                last_accessed_after=last_accessed_after, recency_half_life_days=recency_half_life_days,
                occurred_after=occurred_after, occurred_before=occurred_before,
            )
        )

    async def feedback(
        self, memory_ids: Sequence[str | UUID], useful: bool = True, conversation_id: str | None = None
    ) -> m.FeedbackResult:
        return await self._run(_api.feedback(memory_ids, useful=useful, conversation_id=conversation_id))

    async def bootstrap(
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
        return await self._run(
            _api.bootstrap(
                limit=limit, include_active=include_active, include_thread=include_thread,
                include_stable=include_stable, active_limit=active_limit, max_chars=max_chars,
                conversation_id=conversation_id,
            )
        )

    async def update_tier(self, memory_id: str | UUID, tier: str, *, reason: str | None = None) -> m.TierChange:
        return await self._run(_api.update_tier(memory_id, tier, reason=reason))

    async def catalysts(self, *, limit: int | None = None) -> m.Catalysts:
        return await self._run(_api.catalysts(limit=limit))

    async def stats(self) -> m.PhiStats:
        return await self._run(_api.stats())

    async def conversation_end(
        self, conversation_id: str, session_metrics: Mapping[str, Any] | None = None
    ) -> m.MetaReflection:
        return await self._run(_api.conversation_end(conversation_id, session_metrics))

    async def conversation_reflection(
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
        return await self._run(
            _api.conversation_reflection(
                conversation_id, context_quality=context_quality, continuity_score=continuity_score,
                needed_correction=needed_correction, had_emergence_moment=had_emergence_moment,
                surprises=surprises, friction_notes=friction_notes, general_notes=general_notes,
            )
        )

    async def purge_namespace(self, *, confirm: str) -> m.NamespacePurge:
        return await self._run(_api.namespace_purge(confirm=confirm))

    async def health(self) -> m.Health:
        return await self._run(_api.health())


class AsyncAssociations:
    def __init__(self, client: AsyncAnimaClient):
        self._client = client

    async def discover(
        self, memory_id: str | UUID, *, min_strength: float | None = None, limit: int | None = None
    ) -> m.Associations:
        return await self._client._run(_api.associations_discover(memory_id, min_strength=min_strength, limit=limit))

    async def hubs(self, *, limit: int | None = None, min_connections: int | None = None) -> m.Hubs:
        return await self._client._run(_api.associations_hubs(limit=limit, min_connections=min_connections))

    async def network_stats(self, memory_id: str | UUID) -> m.NetworkStats:
        return await self._client._run(_api.associations_network_stats(memory_id))


class AsyncHandshakes:
    def __init__(self, client: AsyncAnimaClient):
        self._client = client

    async def get(self) -> m.Handshake:
        return await self._client._run(_api.handshake_get())

    async def generate(self, *, force: bool = True) -> m.Handshake:
        return await self._client._run(_api.handshake_generate(force=force))

    async def history(self, *, limit: int | None = None) -> m.HandshakeHistory:
        return await self._client._run(_api.handshake_history(limit=limit))


class AsyncMemories:
    def __init__(self, client: AsyncAnimaClient):
        self._client = client

    async def get(self, memory_id: str | UUID) -> m.Memory:
        return await self._client._run(_api.memory_get(memory_id))

    async def patch(
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
        return await self._client._run(
            _api.memory_patch(
                memory_id, content=content, category=category, tags=tags, source=source, metadata=metadata,
                is_catalyst=is_catalyst, pinned=pinned, occurred_at=occurred_at,
            )
        )

    async def delete(self, memory_id: str | UUID) -> m.DeletedMemory:
        return await self._client._run(_api.memory_delete(memory_id))

    async def purge(self, memory_id: str | UUID) -> m.PurgedMemory:
        return await self._client._run(_api.memory_purge(memory_id))

    async def restore(self, memory_id: str | UUID) -> m.MemoryUpdate:
        return await self._client._run(_api.memory_restore(memory_id))

    async def list(
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
        return await self._client._run(
            _api.memories_list(
                tier=tier, category=category, tags=tags, is_catalyst=is_catalyst, source=source,
                created_after=created_after, created_before=created_before, ordering=ordering, limit=limit,
                cursor=cursor,
            )
        )
