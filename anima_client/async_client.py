"""``AsyncAnimaClient``: the asynchronous twin of ``AnimaClient`` — the same methods,
arguments and results, awaited (asyncio or trio, through httpx)."""

from __future__ import annotations

import logging
from typing import TypeVar

import anyio
import httpx

from anima_client import _api
from anima_client._api import Call, async_method
from anima_client.client import _BaseClient, _Part

T = TypeVar("T")

logger = logging.getLogger("anima_client")


async def async_sleep(seconds: float) -> None:
    """The retry wait (a module function so tests can observe it)."""
    await anyio.sleep(seconds)


class AsyncAnimaClient(_BaseClient):
    """An asynchronous client; see ``AnimaClient`` for the arguments and methods."""

    _http_class = httpx.AsyncClient

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

    add = async_method(_api.add)
    add_batch = async_method(_api.add_batch)
    query = async_method(_api.query)
    feedback = async_method(_api.feedback)
    bootstrap = async_method(_api.bootstrap)
    update_tier = async_method(_api.update_tier)
    catalysts = async_method(_api.catalysts)
    stats = async_method(_api.stats)
    conversation_end = async_method(_api.conversation_end)
    conversation_reflection = async_method(_api.conversation_reflection)
    purge_namespace = async_method(_api.namespace_purge)
    health = async_method(_api.health)


class AsyncAssociations(_Part):
    discover = async_method(_api.associations_discover)
    hubs = async_method(_api.associations_hubs)
    network_stats = async_method(_api.associations_network_stats)


class AsyncHandshakes(_Part):
    get = async_method(_api.handshake_get)
    generate = async_method(_api.handshake_generate)
    history = async_method(_api.handshake_history)


class AsyncMemories(_Part):
    get = async_method(_api.memory_get)
    patch = async_method(_api.memory_patch)
    delete = async_method(_api.memory_delete)
    purge = async_method(_api.memory_purge)
    restore = async_method(_api.memory_restore)
    list = async_method(_api.memories_list)


AsyncAnimaClient._parts = (AsyncAssociations, AsyncHandshakes, AsyncMemories)
