"""``AsyncAnimaClient``: the asynchronous twin of ``AnimaClient`` — the same methods,
arguments and results, awaited (asyncio or trio, through httpx). Only the transport loop
is written here; every method is generated from the sync client's one-line declaration."""

from __future__ import annotations

from typing import TypeVar

import anyio
import httpx

from anima_client._api import Call, add_async_twins
from anima_client.client import AnimaClient, Associations, Handshakes, Memories, _BaseClient, _Part

T = TypeVar("T")


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
        attempt = 0
        while True:
            try:
                response, error = await self._http.request(call.method, call.path, **self._request_kwargs(call)), None
            except httpx.TransportError as caught:
                response, error = None, caught
            done, outcome = self._outcome(call, attempt, response, error)
            if done:
                return outcome
            await async_sleep(outcome)
            attempt += 1


class AsyncAssociations(_Part):
    """``AsyncAnimaClient.associations``: the methods of ``client.Associations``, awaited."""


class AsyncHandshakes(_Part):
    """``AsyncAnimaClient.handshake``: the methods of ``client.Handshakes``, awaited."""


class AsyncMemories(_Part):
    """``AsyncAnimaClient.memories``: the methods of ``client.Memories``, awaited."""


# Every method is derived from the sync client's declaration (``_api.add_async_twins``).
add_async_twins(AsyncAnimaClient, AnimaClient)
add_async_twins(AsyncAssociations, Associations)
add_async_twins(AsyncHandshakes, Handshakes)
add_async_twins(AsyncMemories, Memories)
AsyncAnimaClient._parts = (AsyncAssociations, AsyncHandshakes, AsyncMemories)
