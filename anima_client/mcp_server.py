"""``anima-mcp``: Anima as an MCP server, so that an assistant uses its memory on its own.

Nine tools — ``bootstrap``, ``remember``, ``recall``, ``correct``, ``feedback``,
``promote``, ``forget``, ``reflect``, ``handshake`` — each one call of the Anima API
through ``AsyncAnimaClient``. Their descriptions tell the model when to call them
(bootstrap at the start of every conversation, recall before answering from past context,
feedback when a recalled memory helped or misled, remember what is worth keeping, correct
a fact that changed, forget only when the user asks, reflect at the end).

The server keeps one open *conversation* per MCP session (per process on stdio, per
``Mcp-Session-Id`` on streamable HTTP): its id — generated, or given with
``--conversation-id`` / ``ANIMA_CONVERSATION_ID`` / ``bootstrap(conversation_id=…)`` — goes
with every recall (so memories found together become associated) and every feedback, and
the session's counters (memories loaded, used, queries, results, relevance) become the
``sessionMetrics`` that ``reflect`` sends. ``reflect`` closes the conversation; so does
a second ``bootstrap``.

    anima-mcp                                            # stdio (Claude Desktop, Claude Code, Cursor)
    anima-mcp --transport streamable-http --port 8765    # http://127.0.0.1:8765/mcp
    anima-mcp --transport streamable-http --host 0.0.0.0 --allowed-host mcp.example.com:8765

Configuration: ``ANIMA_URL`` (default http://127.0.0.1:8000). On stdio the server is a
local process of its one user: it uses ``ANIMA_API_KEY``, else the key file
``scripts/serve`` wrote (``config.find_api_key``).

Over streamable HTTP anyone who reaches the port is a caller, so the server has no key
of its own: every request carries ``Authorization: Bearer <an Anima API key>`` (the keys
of the REST API), checked by the SDK's bearer middleware (``AuthSettings`` with our
``AnimaKeyVerifier``) before any tool runs — missing or refused: 401 with
``WWW-Authenticate: Bearer``. The verifier asks Anima (``KEY_VERIFY_PATH``), trusts a
key it accepted for ``KEY_VERIFY_TTL`` seconds and refuses a key Anima refused for
``KEY_REFUSAL_TTL`` seconds without asking again (both remembered by the key's SHA-256,
at most ``KEY_CACHE_SIZE`` of each); at most ``KEY_VERIFY_CONCURRENCY`` verifications are
in flight, so a flood of bad keys waits here instead of reaching Anima. Tools call
Anima with *that caller's* key (one ``AsyncAnimaClient`` per key, the
``CALLER_CLIENTS_SIZE`` most recently used kept open), so Anima applies the key's scope
and namespace: a read key's ``remember`` is a tool error. ``ANIMA_API_KEY`` and the key
file are never used over HTTP. An MCP session belongs to the key that opened it (the
SDK answers 404 to another key).

DNS rebinding (a web page making the browser talk to the server under a foreign name)
is refused by the SDK's Host/Origin checks, on for every ``--host``: on loopback the
SDK's defaults (``127.0.0.1``, ``localhost``, ``[::1]``, any port); on any other address
the server refuses to start (exit 2) unless ``--allowed-host`` names the Host header(s)
clients use (``name:port``, ``name:*`` for any port, repeatable). The loopback names stay
allowed: a rebinding page can only send its own name. ``--allowed-origin`` allows browser
origins (none by default; clients that send no ``Origin``, as MCP clients do, pass). The
checks run after the bearer check (the SDK's order): a foreign Host with a valid key is
421, a foreign Origin 403.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import logging
import os
import re
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio
import httpx
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field

from anima_client import config, formatting
from anima_client.async_client import AsyncAnimaClient
from anima_client.client import USER_AGENT
from anima_client.conversations import CLIENT_NAME, Conversations
from anima_client.dates import parse_since
from anima_client.errors import (
    AnimaConnectionError,
    AnimaError,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationError,
)

logger = logging.getLogger("anima_client.mcp")

SERVER_NAME = "anima"
CONVERSATION_ENV = "ANIMA_CONVERSATION_ID"
DEFAULT_HTTP_PORT = 8765
#: The ``source`` of memories stored by ``remember``.
SOURCE = CLIENT_NAME
#: Key of a session without a transport session id (stdio: one client per process).
PROCESS_SESSION = "process"

#: A cheap authenticated read any key's scope allows: it verifies an HTTP caller's key.
KEY_VERIFY_PATH = "/api/v1/meta/cache-stats"
#: Seconds a key Anima accepted is trusted before Anima is asked again.
KEY_VERIFY_TTL = 60.0
#: Seconds a key Anima refused (401) is refused without asking Anima again.
KEY_REFUSAL_TTL = 10.0
#: Most keys remembered as trusted, and as refused (the oldest verdicts are forgotten first).
KEY_CACHE_SIZE = 1024
#: Most key verifications in flight to Anima at once; more callers wait their turn.
KEY_VERIFY_CONCURRENCY = 4
KEY_VERIFY_TIMEOUT = 10.0
#: Most per-key Anima clients (connection pools) kept open over HTTP.
CALLER_CLIENTS_SIZE = 64
#: What a bearer key may look like before Anima is asked about it (printable ASCII).
KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,512}")
#: The SDK's Host/Origin defaults for a loopback ``--host``.
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]

UNAUTHORIZED_HINT = "Anima refused the API key: set ANIMA_API_KEY for the MCP server (see the README)."
UNAUTHORIZED_BEARER_HINT = "Anima refused this request's API key: send a valid key as 'Authorization: Bearer <key>'."
FORBIDDEN_HINT = "This API key may not do that (its scope is too narrow)."
NO_BEARER_HINT = "This request carried no API key: send one as 'Authorization: Bearer <key>'."
NOT_AN_ID_HINT = "That is not a memory id; use an id shown by bootstrap or recall."
#: The argument of the tools that act on one memory.
MemoryId = Annotated[str, Field(description="The memory's id (a UUID) from bootstrap or recall.")]
#: How ``remember`` says to confirm a correction it suggests (``formatting.add_text``).
CONFIRM_CORRECTION = 'correct(memory_id="{old}", corrected_by="{new}")'

INSTRUCTIONS = """\
Anima is your long-term memory: it keeps what you learn about the user and their work \
from one conversation to the next.
- At the start of every conversation, call `bootstrap` before answering and treat what \
it returns as things you already know.
- Before answering anything that may depend on an earlier conversation (preferences, \
people, projects, past decisions, "as before"), call `recall`.
- Whenever you learn something worth keeping (a preference, decision, fact about the \
user, their people, projects or environment), call `remember` with one self-contained \
sentence. Don't store secrets or small talk.
- When a remembered fact is wrong or no longer true, `correct` it.
- When a recalled memory helped you answer, call `feedback` with useful=true; when it \
misled you, with useful=false.
- When a memory proves lasting and important, `promote` it to `stable`.
- Call `forget` only when the user asks you to forget something; never on your own.
- Near the end of a conversation, call `reflect`.
Use memory quietly: don't recite it unless asked."""

BOOTSTRAP_DESCRIPTION = """\
Load your long-term memory of this user and their work. Call this FIRST, at the start of \
every conversation, before you answer the first message — even when the message seems \
unrelated, what you remember can change the right answer. Returns the memories that \
matter most — pinned ones first (what the user wants always known), then by tier \
(stable: long-lived facts and preferences; thread: recurring topics; active: recent) — \
each with its id, and how many memories are stored. \
Treat them as things you already know; don't recite them unprompted. Call it once per \
conversation (a second call starts a new conversation); afterwards use `recall` to look \
for anything specific."""

REMEMBER_DESCRIPTION = """\
Store one durable fact in long-term memory so that future conversations know it. Call \
it, without being asked, whenever you learn something worth keeping beyond this \
conversation: the user's preferences, decisions, corrections, facts about them, their \
people, projects, environment and goals, and conclusions you reached together. Write \
one self-contained sentence that makes sense on its own later ("Dana is allergic to \
peanuts.", not "She is allergic to them."); store several facts as several calls. Don't \
store secrets (passwords, keys, tokens), small talk, or what only matters right now. \
Storing the same text again is harmless: it is recognised and reinforced. When a stored \
fact turns out wrong or changed, use `correct` instead. If the answer says the new \
memory may correct an older one and it does, confirm with the `correct` call shown."""

RECALL_DESCRIPTION = """\
Search long-term memory by meaning. Call it before answering whenever the answer might \
depend on an earlier conversation — the user's preferences, people, projects, setup or \
past decisions, "like last time", "as I said" — and before asking the user something \
they may already have told you. Phrase the query as the information you need ("Which \
database does the staging server run?"). Each result shows its id, tier, φ (how much it \
has mattered) and similarity (0–1; above about 0.5 is a strong match). Recalled \
memories are reinforced and memories recalled together become associated, so recall \
what you actually need. Use mode "hybrid" to also match exact words (names, error \
codes, identifiers). Narrow the search when the question does: category, tags, metadata \
(e.g. {"project": "apollo"}) or since (only memories stored after a date, or within an \
age such as "7d"). For "lately" or "what were we just doing", set \
recency_half_life_days (e.g. 7) to favour memories used recently. Results are current \
facts; as_of gives the facts valid at an earlier moment, include_superseded corrected \
ones too. A result notes what it corrects or what superseded it."""

CORRECT_DESCRIPTION = """\
Correct a remembered fact that was wrong or is no longer true ("Dana moved to Lyon", \
"the deadline is now Friday"). Give the outdated memory's id (from recall or bootstrap) \
and the corrected fact as one self-contained sentence in content; or, instead of \
content, corrected_by: the id of a memory already stored that corrects it (as \
`remember` suggests). The old memory is superseded: kept in the history, no longer \
loaded or recalled as current."""

FEEDBACK_DESCRIPTION = """\
Tell long-term memory which recalled memories mattered. Call it when a recalled memory \
helped you answer (useful=true) or misled you (useful=false): wrong, outdated or beside \
the point. Give the ids shown by recall or bootstrap; several at once are fine. A useful \
mark raises the memory's φ a little, so it wins close calls in later recalls; a not-useful \
mark lowers it. It never overrides relevance, so mark honestly and only what you used \
or were misled by. Ids that match no memory are reported and change nothing."""

PROMOTE_DESCRIPTION = """\
Move a memory to another tier when its importance has clearly changed: to "stable" when \
it proved lasting and important (a core preference, a standing decision, something the \
user says matters), to "thread" when it keeps coming up, back to "active" when it is no \
longer central. Memories also climb tiers on their own as they are recalled, so use \
this for clear signals, not routinely. Needs the memory id shown by bootstrap or \
recall."""

FORGET_DESCRIPTION = """\
Delete a memory. Use it ONLY when the user explicitly asks you to forget something \
("forget that", "don't remember my address", "delete what you know about X") — never \
on your own initiative, to tidy up, or because a fact changed (then `correct` it \
instead). Needs the memory's id: `recall` first to find it, and forget \
each memory the user meant. By default the deletion is soft: the memory stops coming \
up, but it can still be restored (API or admin). Set purge=true only when the user asks for \
it to be erased permanently or for good: it is then removed with every copy of its text \
and cannot be restored. Tell the user what you forgot."""

REFLECT_DESCRIPTION = """\
Close the conversation by recording how well memory served it. Call it once near the \
end of a conversation — when the user says goodbye or thanks, or the task is done. The \
server sends what it tracked during this session (memories loaded by bootstrap, how many \
of them were used, queries run, results and their relevance) and returns insights and \
recommendations for next time. Add your own view when you can: context_quality and \
continuity_score from 1 to 10, whether the user had to correct you, whether something \
new emerged, and short notes. The next tool call after this starts a new conversation."""

HANDSHAKE_DESCRIPTION = """\
Get a short first-person continuity note written from memory: the main theme, the most \
important memories, open research threads and the last reflection's advice. Call it \
after bootstrap when you want a quick sense of where you left off, or when the user \
asks "where were we?" or "what do you remember?". A note is kept for a day; \
regenerate=true writes a fresh one now."""


def memory_id_of(text: str) -> str:
    """A memory id as a model gave it (spaces around it are fine), or a ``ToolError`` saying it is none."""
    try:
        return str(UUID(text.strip()))
    except ValueError as error:
        raise ToolError(NOT_AN_ID_HINT) from error


def session_key(ctx: Context) -> str:
    """The MCP session a tool call belongs to: the HTTP session id, else the process."""
    headers = ctx.headers
    if headers:
        session_id = headers.get("mcp-session-id")
        if session_id:
            return session_id
    return PROCESS_SESSION


def key_digest(key: str) -> str:
    """How a key is named in memory (caches, client pool): its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyVerdicts:
    """Key digests remembered until a deadline, at most ``size`` of them (the least
    recently remembered forgotten first)."""

    def __init__(self, *, ttl: float, size: int):
        self.ttl = ttl
        self.size = size
        self._until: OrderedDict[str, float] = OrderedDict()  # digest -> time.monotonic() deadline

    def __contains__(self, digest: str) -> bool:
        until = self._until.get(digest)
        if until is not None and until <= time.monotonic():
            del self._until[digest]
            return False
        return until is not None

    def remember(self, digest: str) -> None:
        self._until[digest] = time.monotonic() + self.ttl
        self._until.move_to_end(digest)
        while len(self._until) > self.size:
            self._until.popitem(last=False)


class AnimaKeyVerifier:
    """The SDK's ``TokenVerifier`` for Anima API keys: a bearer is valid when Anima accepts
    it for ``GET KEY_VERIFY_PATH`` (200, or 403: a known key of a narrower scope). An
    accepted key is trusted for ``ttl`` seconds, a refused one (401) refused for
    ``refusal_ttl`` seconds, so each bad key costs Anima one request at most that often;
    an Anima that cannot answer rejects the request (fail closed: 401) and is asked again
    next time. At most ``concurrency`` requests to Anima run at once."""

    def __init__(
        self,
        base_url: str,
        *,
        ttl: float = KEY_VERIFY_TTL,
        refusal_ttl: float = KEY_REFUSAL_TTL,
        cache_size: int = KEY_CACHE_SIZE,
        concurrency: int = KEY_VERIFY_CONCURRENCY,
        timeout: float = KEY_VERIFY_TIMEOUT,
    ):
        self.base_url = base_url
        self.timeout = timeout
        self._trusted = KeyVerdicts(ttl=ttl, size=cache_size)
        self._refused = KeyVerdicts(ttl=refusal_ttl, size=cache_size)
        self._asking = anyio.Semaphore(concurrency)

    async def verify_token(self, token: str) -> AccessToken | None:
        if not KEY_SHAPE.fullmatch(token):
            return None
        digest = key_digest(token)
        if digest not in self._trusted:
            if digest in self._refused:
                return None
            async with self._asking:
                # While this call waited, another may have settled the same key.
                if digest in self._refused:
                    return None
                if digest not in self._trusted:
                    accepted = await self._anima_accepts(token)
                    if accepted is None:
                        return None
                    if not accepted:
                        self._refused.remember(digest)
                        return None
                    self._trusted.remember(digest)
        # client_id names the key, so the SDK binds each MCP session to the key that opened it.
        return AccessToken(token=token, client_id=f"anima-key-{digest[:16]}", scopes=[])

    async def _anima_accepts(self, token: str) -> bool | None:
        """True: Anima knows the key; False: it refused it (401); None: no answer."""
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as http:
                response = await http.get(KEY_VERIFY_PATH, headers=headers)
        except httpx.HTTPError as error:
            logger.warning("cannot verify a bearer key: Anima is not reachable at %s (%s)", self.base_url, error)
            return None
        if response.status_code in (200, 403):
            return True
        if response.status_code == 401:
            logger.info("Anima refused a bearer key (key %s…)", key_digest(token)[:16])
            return False
        logger.warning("cannot verify a bearer key: Anima answered %d", response.status_code)
        return None


@dataclass
class CallerClient:
    client: AsyncAnimaClient
    #: Tool calls using the client now.
    leases: int = 0
    #: Dropped from the pool: closed when its last lease ends.
    evicted: bool = False


class CallerClients:
    """Over HTTP: one ``AsyncAnimaClient`` per caller key, so Anima sees each caller's own
    key; the ``size`` most recently used are kept, the others closed. A tool call holds
    its client by a lease (``lease``), so an evicted client still in use is closed when
    its last call ends, never under it."""

    def __init__(self, base_url: str, *, timeout: float, size: int = CALLER_CLIENTS_SIZE):
        self.base_url = base_url
        self.timeout = timeout
        self.size = size
        self._clients: OrderedDict[str, CallerClient] = OrderedDict()  # key digest -> client

    @asynccontextmanager
    async def lease(self, key: str | None) -> AsyncIterator[AsyncAnimaClient]:
        if not key:  # the SDK's bearer middleware lets no such request through
            raise ToolError(NO_BEARER_HINT)
        digest = key_digest(key)
        held = self._clients.get(digest)
        if held is None:
            held = self._clients[digest] = CallerClient(AsyncAnimaClient(self.base_url, key, timeout=self.timeout))
        self._clients.move_to_end(digest)
        held.leases += 1
        try:
            while len(self._clients) > self.size:
                _, oldest = self._clients.popitem(last=False)
                oldest.evicted = True
                if not oldest.leases:
                    await close_quietly(oldest.client)
            yield held.client
        finally:
            held.leases -= 1
            if held.evicted and not held.leases:
                await close_quietly(held.client)

    async def aclose(self) -> None:
        """Close every client; one still in use closes when its call ends."""
        while self._clients:
            _, held = self._clients.popitem()
            held.evicted = True
            if not held.leases:
                await close_quietly(held.client)


async def close_quietly(client: AsyncAnimaClient) -> None:
    """Close a client's connections, even while the calling task is being cancelled."""
    with anyio.CancelScope(shield=True):
        await client.aclose()


def caller_key() -> str | None:
    """The bearer key the SDK verified for the HTTP request of this tool call (its
    ``AuthContextMiddleware`` holds it in a context variable)."""
    token = get_access_token()
    return token.token if token is not None else None


def tool_error(error: AnimaError, base_url: str, *, unauthorized_hint: str = UNAUTHORIZED_HINT) -> ToolError:
    """An Anima error as a message the model can act on (or pass on to the user)."""
    if isinstance(error, AnimaConnectionError):
        hint = f"Anima is not reachable at {base_url}. Tell the user their memory service is not running."
    elif isinstance(error, Unauthorized):
        hint = unauthorized_hint
    elif isinstance(error, Forbidden):
        hint = FORBIDDEN_HINT
    elif isinstance(error, NotFound) and error.merged_into:
        hint = f"That memory was merged into {error.merged_into}; use that id."
    elif isinstance(error, NotFound):
        hint = "No memory has that id; use an id shown by bootstrap or recall."
    elif isinstance(error, Conflict) and error.superseded_by:
        hint = f"That memory was already corrected by {error.superseded_by}; correct that one instead."
    elif isinstance(error, Conflict) and error.existing_id:
        hint = f"That fact is already stored as {error.existing_id}; pass corrected_by={error.existing_id} instead."
    elif isinstance(error, ValidationError):
        fields = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.fields.items())
        hint = f"Invalid arguments ({fields or error.message})."
    else:
        hint = f"Anima answered {error.code}: {error.message}"
    return ToolError(hint)


def build_server(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    conversation_id: str | None = None,
    timeout: float = 30.0,
    bearer_keys: bool = False,
) -> MCPServer:
    """The MCP server with its nine tools. By default (stdio, in-process) it calls Anima
    with one key of its own (``api_key``, else ``config.find_api_key``). With
    ``bearer_keys`` (streamable HTTP) it has none: every request must carry a bearer key
    Anima accepts, and each tool call uses its caller's key."""
    url = config.base_url(base_url)
    conversations = Conversations(first_id=conversation_id)
    unauthorized_hint = UNAUTHORIZED_BEARER_HINT if bearer_keys else UNAUTHORIZED_HINT

    if bearer_keys:

        @asynccontextmanager
        async def lifespan(_server: MCPServer) -> AsyncIterator[CallerClients]:
            clients = CallerClients(url, timeout=timeout)
            try:
                yield clients
            finally:
                await clients.aclose()

        def anima(ctx: Context) -> AbstractAsyncContextManager[AsyncAnimaClient]:
            return ctx.request_context.lifespan_context.lease(caller_key())

        auth = {
            "token_verifier": AnimaKeyVerifier(url),
            # Anima issues the keys; no OAuth metadata routes (resource_server_url=None).
            "auth": AuthSettings(issuer_url=url, resource_server_url=None),
        }
    else:
        key = config.find_api_key(api_key)
        if not key:
            logger.warning("no API key: set ANIMA_API_KEY (or ANIMA_API_KEY_FILE); Anima will answer 401")

        @asynccontextmanager
        async def lifespan(_server: MCPServer) -> AsyncIterator[AsyncAnimaClient]:
            async with AsyncAnimaClient(url, key, timeout=timeout) as client:
                yield client

        def anima(ctx: Context) -> AbstractAsyncContextManager[AsyncAnimaClient]:
            return nullcontext(ctx.request_context.lifespan_context)

        auth = {}

    server = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version="0.1.0", lifespan=lifespan, log_level="WARNING", **auth
    )

    def failed(error: AnimaError) -> ToolError:
        return tool_error(error, url, unauthorized_hint=unauthorized_hint)

    def tool(description: str, title: str, **hints: bool) -> Any:
        """Register a tool that answers text (``formatting``), with its title and behaviour hints."""
        annotations = ToolAnnotations(title=title, **hints)
        return server.tool(description=description, annotations=annotations, structured_output=False)

    @tool(BOOTSTRAP_DESCRIPTION, "Load memory", read_only_hint=True)
    async def bootstrap(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=200, description="Most memories to load.")] = 30,
        max_chars: Annotated[
            int | None, Field(ge=1, description="Budget for the total text of the memories loaded.")
        ] = 8000,
        conversation_id: Annotated[
            str | None,
            Field(min_length=1, max_length=200, description="Continue a known conversation id instead of a new one."),
        ] = None,
    ) -> str:
        session = session_key(ctx)
        conversation = conversations.current(session)
        if conversation_id is not None and conversation_id != conversation.id:
            conversation = conversations.start(session, conversation_id)
        elif conversation.bootstrapped and conversation_id is None:
            conversation = conversations.start(session)
        started = time.perf_counter()
        try:
            async with anima(ctx) as client:
                result = await client.bootstrap(limit=limit, max_chars=max_chars, conversation_id=conversation.id)
        except AnimaError as error:
            raise failed(error) from error
        conversation.record_bootstrap(result.all, (time.perf_counter() - started) * 1000)
        return formatting.bootstrap_text(result, conversation_id=conversation.id)

    @tool(REMEMBER_DESCRIPTION, "Remember", read_only_hint=False, destructive_hint=False, idempotent_hint=True)
    async def remember(
        ctx: Context,
        content: Annotated[str, Field(min_length=1, max_length=50000, description="One self-contained fact.")],
        category: Annotated[
            str | None, Field(max_length=100, description="A short topic, e.g. preference, person, project, health.")
        ] = None,
        tags: Annotated[
            list[str] | None, Field(max_length=20, description="Up to 20 short keywords (names, project names).")
        ] = None,
        is_catalyst: Annotated[
            bool, Field(description="True only for a turning point: a breakthrough or a decision that changes much.")
        ] = False,
        occurred_at: Annotated[
            str | None,
            Field(description="When it happened, if not now: an ISO 8601 date or datetime (e.g. 2023-05-07)."),
        ] = None,
    ) -> str:
        conversation = conversations.current(session_key(ctx))
        try:
            async with anima(ctx) as client:
                result = await client.add(
                    content, category=category, tags=tags, source=SOURCE, is_catalyst=is_catalyst or None,
                    occurred_at=occurred_at,
                )
        except AnimaError as error:
            raise failed(error) from error
        if result.is_duplicate:
            conversation.record_use(result.memory.id)
        else:
            conversation.memories_stored += 1
        return formatting.add_text(result, confirm=CONFIRM_CORRECTION)

    @tool(RECALL_DESCRIPTION, "Recall", read_only_hint=False, destructive_hint=False)
    async def recall(
        ctx: Context,
        query: Annotated[str, Field(min_length=1, max_length=5000, description="The information you need.")],
        limit: Annotated[int, Field(ge=1, le=50, description="Most memories to return.")] = 8,
        mode: Annotated[
            Literal["semantic", "hybrid"],
            Field(description="hybrid (default) matches meaning and words; semantic matches meaning only."),
        ] = "hybrid",
        tiers: Annotated[
            list[Literal["active", "thread", "stable", "network"]] | None,
            Field(min_length=1, description="Only these tiers."),
        ] = None,
        category: Annotated[str | None, Field(max_length=100, description="Only this category.")] = None,
        tags: Annotated[list[str] | None, Field(max_length=20, description="Only memories with all these tags.")] = None,
        threshold: Annotated[
            float | None, Field(ge=0, le=1, description="Lowest similarity (service default 0.3).")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description='Only memories whose metadata contains these keys and values, e.g. {"project": "apollo"}.'),
        ] = None,
        since: Annotated[
            str | None,
            Field(
                max_length=40,
                description='Only memories stored since: a date ("2026-01-31"), a datetime, or an age ("12h", "7d", "2w").',
            ),
        ] = None,
        recency_half_life_days: Annotated[
            float | None,
            Field(
                ge=0.001, le=36500,
                description="Favour recently used memories: a result's weight halves every this many days since "
                "its last use (7 for 'lately'). Leave out for none.",
            ),
        ] = None,
        as_of: Annotated[
            str | None,
            Field(
                max_length=40,
                description='The facts valid at that moment: a date ("2025-06-01"), a datetime, or an age ("30d").',
            ),
        ] = None,
        include_superseded: Annotated[
            bool, Field(description="Also corrected and expired memories (not with as_of).")
        ] = False,
    ) -> str:
        conversation = conversations.current(session_key(ctx))
        times = {}
        for name, value in (("since", since), ("as_of", as_of)):
            try:
                times[name] = parse_since(value) if value is not None else None
            except ValueError as error:
                raise ToolError(f"Invalid arguments ({name}: {error}).") from error
        try:
            async with anima(ctx) as client:
                result = await client.query(
                    query, limit=limit, mode=mode, tiers=tiers, category=category, tags=tags, threshold=threshold,
                    conversation_id=conversation.id, metadata=metadata, created_after=times["since"],
                    recency_half_life_days=recency_half_life_days, as_of=times["as_of"],
                    include_superseded=include_superseded or None,
                )
        except AnimaError as error:
            raise failed(error) from error
        conversation.record_recall(result)
        return formatting.query_text(result)

    @tool(CORRECT_DESCRIPTION, "Correct", read_only_hint=False, destructive_hint=False)
    async def correct(
        ctx: Context,
        memory_id: MemoryId,
        content: Annotated[
            str | None,
            Field(min_length=1, max_length=50000, description="The corrected fact, one self-contained sentence."),
        ] = None,
        corrected_by: Annotated[
            str | None, Field(description="Instead of content: the id of a stored memory that corrects it.")
        ] = None,
        category: Annotated[str | None, Field(max_length=100, description="With content: a short topic.")] = None,
        tags: Annotated[list[str] | None, Field(max_length=20, description="With content: up to 20 keywords.")] = None,
    ) -> str:
        if (content is None) == (corrected_by is None):
            raise ToolError("Give content (the corrected fact) or corrected_by (a stored memory's id), one of the two.")
        memory_id = memory_id_of(memory_id)
        corrected_by = memory_id_of(corrected_by) if corrected_by is not None else None
        new = {"category": category, "tags": tags, "source": SOURCE} if content is not None else {}
        conversation = conversations.current(session_key(ctx))
        try:
            async with anima(ctx) as client:
                result = await client.correct(memory_id, content, corrected_by=corrected_by, **new)
        except AnimaError as error:
            raise failed(error) from error
        conversation.record_use(result.corrected.id)
        if content is not None:
            conversation.memories_stored += 1
        return formatting.correction_text(result)

    @tool(FEEDBACK_DESCRIPTION, "Feedback", read_only_hint=False, destructive_hint=False)
    async def feedback(
        ctx: Context,
        memory_ids: Annotated[
            list[str],
            Field(min_length=1, max_length=100, description="The ids (UUIDs) of the memories, from recall or bootstrap."),
        ],
        useful: Annotated[bool, Field(description="true: they helped you answer; false: they misled you.")],
    ) -> str:
        try:
            ids = [str(UUID(memory_id.strip())) for memory_id in memory_ids]
        except ValueError as error:
            raise ToolError("Not all of those are memory ids; use ids shown by bootstrap or recall.") from error
        conversation = conversations.current(session_key(ctx))
        try:
            async with anima(ctx) as client:
                result = await client.feedback(ids, useful=useful, conversation_id=conversation.id)
        except AnimaError as error:
            raise failed(error) from error
        for memory in result.updated:
            conversation.record_use(memory.memory_id)
        return formatting.feedback_text(result)

    @tool(PROMOTE_DESCRIPTION, "Promote", read_only_hint=False, destructive_hint=False, idempotent_hint=True)
    async def promote(
        ctx: Context,
        memory_id: MemoryId,
        tier: Annotated[Literal["stable", "thread", "active"], Field(description="The tier to move it to.")] = "stable",
        reason: Annotated[
            str, Field(min_length=1, max_length=200, description="Why, in a few words (kept in the audit).")
        ] = "assistant",
    ) -> str:
        memory_id = memory_id_of(memory_id)
        conversation = conversations.current(session_key(ctx))
        try:
            async with anima(ctx) as client:
                result = await client.update_tier(memory_id, tier, reason=reason)
        except AnimaError as error:
            raise failed(error) from error
        conversation.record_use(result.memory.id)
        if result.promotion is not None:
            conversation.memories_promoted += 1
        return formatting.tier_change_text(result)

    @tool(FORGET_DESCRIPTION, "Forget", read_only_hint=False, destructive_hint=True)
    async def forget(
        ctx: Context,
        memory_id: MemoryId,
        purge: Annotated[
            bool,
            Field(description="True only when the user asks to erase it permanently: not restorable."),
        ] = False,
    ) -> str:
        memory_id = memory_id_of(memory_id)
        try:
            async with anima(ctx) as client:
                if purge:
                    return formatting.purged_text(await client.memories.purge(memory_id))
                return formatting.deleted_text(await client.memories.delete(memory_id))
        except AnimaError as error:
            raise failed(error) from error

    @tool(REFLECT_DESCRIPTION, "Reflect", read_only_hint=False, destructive_hint=False)
    async def reflect(
        ctx: Context,
        context_quality: Annotated[
            int | None, Field(ge=1, le=10, description="How useful the loaded memory was, 1–10.")
        ] = None,
        continuity_score: Annotated[
            int | None, Field(ge=1, le=10, description="How well this continued earlier conversations, 1–10.")
        ] = None,
        needed_correction: Annotated[bool, Field(description="The user had to correct something you remembered.")] = False,
        had_emergence_moment: Annotated[bool, Field(description="Something genuinely new came up.")] = False,
        notes: Annotated[str, Field(max_length=2000, description="Anything worth noting about this conversation.")] = "",
        friction_notes: Annotated[str, Field(max_length=1000, description="What got in the way.")] = "",
        surprises: Annotated[str, Field(max_length=1000, description="What surprised you.")] = "",
    ) -> str:
        session = session_key(ctx)
        conversation = conversations.current(session)
        subjective = (
            context_quality is not None or continuity_score is not None or needed_correction
            or had_emergence_moment or notes or friction_notes or surprises
        )
        async with anima(ctx) as client:
            try:
                reflection = await client.conversation_end(conversation.id, conversation.session_metrics())
            except AnimaError as error:
                raise failed(error) from error
            # Recorded: this conversation is over, whatever happens to the optional part below.
            conversations.close(session)
            text = formatting.reflection_text(reflection)
            if subjective:
                try:
                    await client.conversation_reflection(
                        conversation.id, context_quality=context_quality, continuity_score=continuity_score,
                        needed_correction=needed_correction, had_emergence_moment=had_emergence_moment,
                        surprises=surprises, friction_notes=friction_notes, general_notes=notes,
                    )
                except AnimaError as error:
                    return f"{text}\nYour own view was not recorded: {failed(error)}"
                text += "\nYour own view was recorded too."
        return text

    @tool(HANDSHAKE_DESCRIPTION, "Continuity note", read_only_hint=False, destructive_hint=False)
    async def handshake(
        ctx: Context,
        regenerate: Annotated[bool, Field(description="Write a fresh note now instead of today's.")] = False,
    ) -> str:
        try:
            async with anima(ctx) as client:
                note = await (client.handshake.generate(force=True) if regenerate else client.handshake.get())
        except AnimaError as error:
            raise failed(error) from error
        return formatting.handshake_text(note)

    return server


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_security(
    host: str, allowed_hosts: list[str], allowed_origins: list[str], *, port: int
) -> TransportSecuritySettings:
    """The Host/Origin checks for ``--host``: the loopback names always, plus what the
    options allow; ``ValueError`` (one line) for a non-loopback host no ``--allowed-host``
    names, which would otherwise serve any Host header."""
    if not is_loopback(host) and not allowed_hosts:
        raise ValueError(
            f"--host {host} is not a loopback address: name the Host header clients will send with "
            f"--allowed-host (e.g. --allowed-host mcp.example.com:{port}), or listen on 127.0.0.1"
        )
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=LOOPBACK_HOSTS + allowed_hosts,
        allowed_origins=LOOPBACK_ORIGINS + allowed_origins,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="anima-mcp",
        description="Anima's MCP server: long-term memory tools for an assistant. Reads ANIMA_URL; on stdio "
        "ANIMA_API_KEY (else the key file scripts/serve wrote); over streamable HTTP each request's "
        "'Authorization: Bearer <key>' instead.",
    )
    parser.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="streamable-http: address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT, help="streamable-http: port")
    parser.add_argument(
        "--allowed-host", action="append", default=[], metavar="HOST[:PORT]",
        help="streamable-http: a Host header to accept besides the loopback names (repeatable; "
        "'name:*' for any port); required when --host is not loopback",
    )
    parser.add_argument(
        "--allowed-origin", action="append", default=[], metavar="ORIGIN",
        help="streamable-http: a browser Origin to accept, e.g. https://app.example.com (repeatable)",
    )
    parser.add_argument("--url", default=None, help=f"Anima's base URL (default: ${config.URL_ENV} or {config.DEFAULT_URL})")
    parser.add_argument(
        "--conversation-id",
        default=os.environ.get(CONVERSATION_ENV),
        help=f"the first conversation's id (default: ${CONVERSATION_ENV}, else generated)",
    )
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    # stdout is the protocol on stdio: every log line goes to stderr.
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="anima-mcp %(levelname)s %(message)s")
    if args.transport == "stdio":
        build_server(base_url=args.url, conversation_id=args.conversation_id).run("stdio")
        return
    try:
        security = http_security(args.host, args.allowed_host, args.allowed_origin, port=args.port)
    except ValueError as error:
        parser.exit(2, f"anima-mcp: {error}\n")
    if os.environ.get(config.KEY_ENV):
        logger.warning("%s is not used over HTTP: each client sends its own key as 'Authorization: Bearer'", config.KEY_ENV)
    server = build_server(base_url=args.url, conversation_id=args.conversation_id, bearer_keys=True)
    print(f"anima-mcp: streamable HTTP on http://{args.host}:{args.port}/mcp (bearer keys required)", file=sys.stderr)
    server.run("streamable-http", host=args.host, port=args.port, transport_security=security)


if __name__ == "__main__":
    main()
