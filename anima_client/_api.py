"""The API's routes as data: each builder returns a ``Call`` (method, path, query, body,
how to read the answer). The sync and async clients only differ in how they send one,
so every route, default and parser is written once, here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypedDict, TypeVar, Unpack
from uuid import UUID

import httpx

from anima_client import models as m
from anima_client.errors import ServerError, error_from_response

T = TypeVar("T")
P = ParamSpec("P")

V1 = "/api/v1"


class _Unset:
    """Marks a PATCH field that is not sent (``None`` is a value: it clears the field)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Envelope:
    status: int
    data: Any
    meta: dict[str, Any]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Envelope], T]
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    #: Statuses read by ``parse`` instead of raised (``/health`` answers 503 with its checks).
    accept: frozenset[int] = field(default_factory=frozenset)
    #: The answer is outside the envelope (``/health``).
    raw: bool = False

    @property
    def idempotent(self) -> bool:
        """Safe to send again after a timeout that may have reached the server."""
        return self.method in ("GET", "HEAD", "PUT", "DELETE")


def read_response(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer of a response, or the typed error it stands for."""
    if response.status_code >= 400 and response.status_code not in call.accept:
        raise error_from_response(response)
    try:
        body = response.json()
    except ValueError:
        raise ServerError(
            f"Expected JSON, got {response.headers.get('Content-Type', 'no content type')}",
            code="INVALID_RESPONSE",
            status=response.status_code,
            request_id=response.headers.get("X-Request-ID"),
        ) from None
    if call.raw:
        return call.parse(Envelope(status=response.status_code, data=body, meta={}))
    if not isinstance(body, dict) or body.get("success") is not True:
        raise error_from_response(response)
    return call.parse(Envelope(status=response.status_code, data=body.get("data"), meta=body.get("meta") or {}))


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None and value is not UNSET}


def _query_string(values: Mapping[str, Any]) -> dict[str, Any]:
    """Query-string values as the API reads them: ``true``/``false``, ISO dates, strings."""
    shown: dict[str, Any] = {}
    for key, value in _compact(values).items():
        if isinstance(value, bool):
            shown[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            shown[key] = value.isoformat()
        elif isinstance(value, (list, tuple)):
            shown[key] = [str(item) for item in value]
        else:
            shown[key] = str(value)
    return shown


def _iso(value: datetime | date | str | None) -> str | None:
    """A time for a JSON body: ``datetime``/``date`` as ISO 8601, a string as given."""
    if value is None:
        return None
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return str(value)


def _with_meta(model: type[T], key: str | None = None) -> Callable[[Envelope], T]:
    def parse(envelope: Envelope) -> T:
        data = envelope.data if key is None else envelope.data[key]
        return model.model_validate({**data, "meta": envelope.meta})  # type: ignore[attr-defined]

    return parse


def _id(memory_id: str | UUID) -> str:
    return str(UUID(str(memory_id)))


def _ids(memory_ids: Sequence[str | UUID] | None, what: str) -> list[str] | None:
    """A list of memory ids for a body (None stays None); one id alone is a mistake."""
    if memory_ids is None:
        return None
    if isinstance(memory_ids, (str, UUID)):
        raise TypeError(f"{what} takes a sequence of memory ids, not one id")
    return [str(memory_id) for memory_id in memory_ids]


# --- Memories -----------------------------------------------------------------------------


class MemoryFields(TypedDict, total=False):
    """The optional fields of a new memory, the keywords ``add`` and ``correct`` share
    (their signatures show them one by one, see ``_method_signature``)."""

    category: str | None
    tags: Sequence[str] | None
    source: str | None
    is_catalyst: bool | None
    metadata: Mapping[str, Any] | None
    occurred_at: datetime | date | str | None
    expires_at: datetime | date | str | None
    valid_from: datetime | date | str | None


def _memory_fields(fields: Mapping[str, Any], function: str) -> Mapping[str, Any]:
    unknown = sorted(set(fields) - set(MemoryFields.__annotations__))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    return fields


def add(
    content: str, *, supersedes: Sequence[str | UUID] | None = None, **fields: Unpack[MemoryFields]
) -> Call[m.AddResult]:
    """Store a memory; an identical content answers the existing one (``is_duplicate``).

    ``expires_at``: after it the memory behaves as superseded (kept, out of default
    reads). ``valid_from``: since when the fact holds (not in the future; default: now),
    what ``as_of`` queries read. ``supersedes``: ids of memories this one corrects (at
    most 100). When the new memory may correct an older one, ``result.possibly_corrects``
    names it: confirm with ``correct(old_id, corrected_by=result.memory.id)``."""
    body = _memory_body({"content": content, "supersedes": supersedes, **_memory_fields(fields, "add")})
    return Call("POST", f"{V1}/memories/add", _with_meta(m.AddResult), json=body)


def memory_correct(
    memory_id: str | UUID,
    content: str | None = None,
    *,
    corrected_by: str | UUID | None = None,
    **fields: Unpack[MemoryFields],
) -> Call[m.Correction]:
    """Correct a memory: ``content`` (and ``add``'s keywords) stores the corrected fact as a
    new memory, or ``corrected_by`` names an existing one (e.g. a ``possibly_corrects``
    suggestion confirmed). The old memory is superseded: kept in the history, out of
    default reads. ``Conflict`` (409) when it is already superseded (``superseded_by``)
    or the content is another live memory's (``existing_id``). ``valid_from``: since when
    the correction holds, hence until when the old fact held (default: now)."""
    if (content is None) == (corrected_by is None):
        raise TypeError("correct takes the new content or corrected_by (an existing memory's id), one of the two")
    fields = _memory_fields(fields, "correct")
    body = _memory_body({"content": content, "corrected_by": corrected_by, **fields})
    return Call("POST", f"{V1}/memories/{_id(memory_id)}/correct", _with_meta(m.Correction), json=body)


#: Keywords of ``add`` and ``correct`` as the API spells them (the others are the same).
_MEMORY_KEYS = {
    "is_catalyst": "isCatalyst",
    "occurred_at": "occurredAt",
    "expires_at": "expiresAt",
    "valid_from": "validFrom",
    "corrected_by": "correctedBy",
}


def _memory_body(item: str | Mapping[str, Any]) -> dict[str, Any]:
    """The body of a new memory (add, an add-batch item, correct): a string is its content;
    a mapping takes ``add``'s keywords or the API's keys, unset (None) ones left out."""
    if isinstance(item, str):
        return {"content": item}
    if not isinstance(item, Mapping):
        raise TypeError(f"a batch item is a string or a mapping, not {type(item).__name__}")
    body: dict[str, Any] = {}
    for key, value in _compact(item).items():
        if key == "tags" and not isinstance(value, str):
            value = list(value)
        elif key == "metadata" and isinstance(value, Mapping):
            value = dict(value)
        elif key in ("occurred_at", "occurredAt", "expires_at", "expiresAt", "valid_from", "validFrom"):
            value = _iso(value)
        elif key == "supersedes":
            value = _ids(value, "supersedes")
        elif key in ("corrected_by", "correctedBy"):
            value = str(value)
        body[_MEMORY_KEYS.get(key, key)] = value
    return body


def add_batch(items: Sequence[str | Mapping[str, Any]]) -> Call[m.AddBatchResult]:
    """Store 1–100 memories in one request: each item a content string or a mapping of
    ``add``'s keywords (``content``, ``category``, ``tags``, ``source``, ``is_catalyst``,
    ``metadata``, ``occurred_at``, ``expires_at``, ``valid_from``, ``supersedes``). Every item's outcome
    comes back in order (``created``, ``duplicate`` or ``invalid`` with ``field`` and
    ``message``); an invalid item does not stop the others."""
    if isinstance(items, (str, Mapping)):
        raise TypeError("add_batch takes a sequence of items (strings or mappings), not one item")
    body = {"items": [_memory_body(item) for item in items]}
    return Call("POST", f"{V1}/memories/add-batch", _with_meta(m.AddBatchResult), json=body)


def query(
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
    as_of: datetime | date | str | None = None,
    include_superseded: bool | None = None,
) -> Call[m.QueryResult]:
    """Find memories by meaning (``mode="hybrid"`` adds full-text matches). With a
    ``conversation_id`` the hits' co-occurrence is recorded.

    Filters: ``metadata`` (the memory's metadata contains this object), ``source``,
    ``created_after`` (inclusive) / ``created_before`` (exclusive), ``last_accessed_after``
    — datetimes, dates or ISO 8601 strings. ``recency_half_life_days`` multiplies each
    weight by ``0.5 ** (days since last access / half-life)``.

    Validity: by default only current facts (not superseded by a correction, not
    expired); ``as_of`` the facts valid at that moment; ``include_superseded=True`` every
    memory, corrected ones too (one of the two at most)."""
    body = _compact(
        {
            "query": query,
            "limit": limit,
            "similarityThreshold": threshold,
            "tiers": list(tiers) if tiers is not None else None,
            "conversationId": conversation_id,
            "category": category,
            "tags": list(tags) if tags is not None else None,
            "mode": mode,
            "metadata": dict(metadata) if metadata is not None else None,
            "source": source,
            "createdAfter": _iso(created_after),
            "createdBefore": _iso(created_before),
            "lastAccessedAfter": _iso(last_accessed_after),
            "recencyHalfLifeDays": recency_half_life_days,
            "occurredAfter": _iso(occurred_after),
            "occurredBefore": _iso(occurred_before),
            "asOf": _iso(as_of),
            "includeSuperseded": include_superseded,
        }
    )
    return Call("POST", f"{V1}/memories/query", _with_meta(m.QueryResult), json=body)


def feedback(
    memory_ids: Sequence[str | UUID], useful: bool = True, conversation_id: str | None = None
) -> Call[m.FeedbackResult]:
    """Say that recalled memories helped (``useful=True``: each one's φ goes up one step,
    0.5) or misled (``useful=False``: down one step), within [0, 5]; each mark counts as
    an access. Ids that match no live memory of the namespace come back in
    ``not_found``, unchanged. Needs a write key."""
    body = _compact({"memoryIds": _ids(memory_ids, "feedback"), "useful": useful, "conversationId": conversation_id})
    return Call("POST", f"{V1}/memories/feedback", _with_meta(m.FeedbackResult), json=body)


def bootstrap(
    *,
    limit: int | None = None,
    include_active: bool | None = None,
    include_thread: bool | None = None,
    include_stable: bool | None = None,
    active_limit: int | None = None,
    max_chars: int | None = None,
    conversation_id: str | None = None,
) -> Call[m.Bootstrap]:
    """The conversation-start context: memories by tier and the tier distribution."""
    params = _query_string(
        {
            "limit": limit,
            "includeActive": include_active,
            "includeThread": include_thread,
            "includeStable": include_stable,
            "activeLimit": active_limit,
            "maxChars": max_chars,
            "conversationId": conversation_id,
        }
    )
    return Call("GET", f"{V1}/memories/bootstrap", _with_meta(m.Bootstrap), params=params)


def update_tier(memory_id: str | UUID, tier: str, *, reason: str | None = None) -> Call[m.TierChange]:
    body = _compact({"memoryId": str(memory_id), "tier": tier, "reason": reason})
    return Call("POST", f"{V1}/memories/update-tier", _with_meta(m.TierChange), json=body)


def catalysts(*, limit: int | None = None) -> Call[m.Catalysts]:
    return Call("GET", f"{V1}/memories/catalysts", _with_meta(m.Catalysts), params=_query_string({"limit": limit}))


def stats() -> Call[m.PhiStats]:
    return Call("GET", f"{V1}/memories/stats", _with_meta(m.PhiStats))


def memory_get(memory_id: str | UUID) -> Call[m.Memory]:
    def parse(envelope: Envelope) -> m.Memory:
        return m.Memory.model_validate(envelope.data["memory"])

    return Call("GET", f"{V1}/memories/{_id(memory_id)}/", parse)


def memory_patch(
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
    expires_at: datetime | date | str | None = UNSET,
) -> Call[m.MemoryUpdate]:
    """Change the fields given (``category=None`` clears it); new content is re-embedded.
    ``pinned=True``: the memory opens every bootstrap and never decays. ``expires_at``:
    after it the memory behaves as superseded; ``None`` clears it."""
    given = {
        "content": content,
        "category": category,
        "tags": list(tags) if tags is not UNSET else UNSET,
        "source": source,
        "metadata": dict(metadata) if metadata is not UNSET else UNSET,
        "isCatalyst": is_catalyst,
        "pinned": pinned,
        "occurredAt": _iso(occurred_at) if occurred_at is not UNSET else UNSET,
        "expiresAt": _iso(expires_at) if expires_at is not UNSET else UNSET,
    }
    body = {key: value for key, value in given.items() if value is not UNSET}
    return Call("PATCH", f"{V1}/memories/{_id(memory_id)}/", _with_meta(m.MemoryUpdate), json=body)


def memory_delete(memory_id: str | UUID) -> Call[m.DeletedMemory]:
    """Soft delete (``restore`` brings it back)."""
    return Call("DELETE", f"{V1}/memories/{_id(memory_id)}/", _with_meta(m.DeletedMemory))


def memory_purge(memory_id: str | UUID, *, chain: bool = False) -> Call[m.PurgedMemory]:
    """``DELETE ?purge=true``: the memory, the memories merged into it and every copy of its
    text. ``chain=True``: its whole chain of corrections too (what it superseded and what
    superseded it)."""
    params = _query_string({"purge": True, "chain": chain or None})
    return Call("DELETE", f"{V1}/memories/{_id(memory_id)}/", _with_meta(m.PurgedMemory), params=params)


def memory_restore(memory_id: str | UUID) -> Call[m.MemoryUpdate]:
    return Call("POST", f"{V1}/memories/{_id(memory_id)}/restore/", _with_meta(m.MemoryUpdate), json={})


def memories_list(
    *,
    tier: str | None = None,
    category: str | None = None,
    tags: Sequence[str] | None = None,
    is_catalyst: bool | None = None,
    source: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    occurred_after: datetime | None = None,
    occurred_before: datetime | None = None,
    as_of: datetime | date | str | None = None,
    include_superseded: bool | None = None,
    ordering: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[m.MemoryPage]:
    """One page; pass ``page.next_cursor`` as ``cursor`` for the next. Current facts by
    default; ``as_of`` / ``include_superseded`` as for ``query``."""
    params = _query_string(
        {
            "tier": tier,
            "category": category,
            "tag": list(tags) if tags else None,
            "isCatalyst": is_catalyst,
            "source": source,
            "createdAfter": created_after,
            "createdBefore": created_before,
            "occurredAfter": occurred_after,
            "occurredBefore": occurred_before,
            "asOf": _iso(as_of),
            "includeSuperseded": include_superseded,
            "ordering": ordering,
            "limit": limit,
            "cursor": cursor,
        }
    )
    return Call("GET", f"{V1}/memories/", _with_meta(m.MemoryPage), params=params)


# --- Namespaces ---------------------------------------------------------------------------


def namespace_purge(*, confirm: str) -> Call[m.NamespacePurge]:
    """Everything of the request's namespace; ``confirm`` must name that namespace."""
    return Call("POST", f"{V1}/namespaces/purge", _with_meta(m.NamespacePurge), json={"confirm": confirm})


# --- Associations -------------------------------------------------------------------------


def associations_discover(
    memory_id: str | UUID, *, min_strength: float | None = None, limit: int | None = None
) -> Call[m.Associations]:
    params = _query_string({"memoryId": memory_id, "minStrength": min_strength, "limit": limit})
    return Call("GET", f"{V1}/associations/discover", _with_meta(m.Associations), params=params)


def associations_hubs(*, limit: int | None = None, min_connections: int | None = None) -> Call[m.Hubs]:
    params = _query_string({"limit": limit, "minConnections": min_connections})
    return Call("GET", f"{V1}/associations/hubs", _with_meta(m.Hubs), params=params)


def associations_network_stats(memory_id: str | UUID) -> Call[m.NetworkStats]:
    params = _query_string({"memoryId": memory_id})
    return Call("GET", f"{V1}/associations/network-stats", _with_meta(m.NetworkStats), params=params)


# --- Reflections and handshakes -----------------------------------------------------------


def conversation_end(conversation_id: str, session_metrics: Mapping[str, Any] | None = None) -> Call[m.MetaReflection]:
    """The service's reflection on a finished conversation from its session metrics."""
    body = _compact({"conversationId": conversation_id, "sessionMetrics": dict(session_metrics or {})})
    return Call("POST", f"{V1}/meta/conversation-end", _with_meta(m.MetaReflection, "reflection"), json=body)


def conversation_reflection(
    conversation_id: str,
    *,
    context_quality: int | None = None,
    continuity_score: int | None = None,
    needed_correction: bool | None = None,
    had_emergence_moment: bool | None = None,
    surprises: str | None = None,
    friction_notes: str | None = None,
    general_notes: str | None = None,
) -> Call[m.ConversationReflection]:
    """Record how a conversation felt (scores 1–10, notes)."""
    body = _compact(
        {
            "conversationId": conversation_id,
            "contextQuality": context_quality,
            "continuityScore": continuity_score,
            "neededCorrection": needed_correction,
            "hadEmergenceMoment": had_emergence_moment,
            "surprises": surprises,
            "frictionNotes": friction_notes,
            "generalNotes": general_notes,
        }
    )
    return Call(
        "POST", f"{V1}/reflection/conversation-end", _with_meta(m.ConversationReflection, "reflection"), json=body
    )


def _handshake(envelope: Envelope) -> m.Handshake:
    return m.Handshake.model_validate(
        {**envelope.data["handshake"], "created": envelope.data.get("created", False), "meta": envelope.meta}
    )


def handshake_get() -> Call[m.Handshake]:
    """The current handshake (made when none is younger than 24 h)."""
    return Call("GET", f"{V1}/meta/handshake", _handshake)


def handshake_generate(*, force: bool = True) -> Call[m.Handshake]:
    return Call("POST", f"{V1}/meta/handshake/generate", _handshake, json={"force": force})


def handshake_history(*, limit: int | None = None) -> Call[m.HandshakeHistory]:
    params = _query_string({"limit": limit})
    return Call("GET", f"{V1}/meta/handshake/history", _with_meta(m.HandshakeHistory), params=params)


# --- Outside /api/v1 ----------------------------------------------------------------------


def health() -> Call[m.Health]:
    """``/health`` answers 503 with its checks when one fails: a result, not an error."""
    return Call("GET", "/health", lambda envelope: m.Health.model_validate(envelope.data), accept=frozenset({503}), raw=True)


# --- client methods from the builders above -----------------------------------------------
# Each request is described once, above; the sync and async clients turn a builder into a
# method with its signature and docstring (``query = sync_method(_api.query)``), so the
# long keyword lists are written in one place.


def _method_signature(builder: Callable[..., Any]) -> inspect.Signature:
    """The builder's signature as a client method's: ``self`` first, the result type
    unwrapped from ``Call[…]``, and ``**fields: Unpack[SomeTypedDict]`` spelled out as
    keyword arguments (``help()`` and editors then list them)."""
    signature = inspect.signature(builder)
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Call[") and returns.endswith("]"):
        returns = returns[len("Call[") : -1]
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    for parameter in signature.parameters.values():
        annotation = parameter.annotation
        if parameter.kind is inspect.Parameter.VAR_KEYWORD and isinstance(annotation, str) and annotation.startswith("Unpack["):
            fields = globals()[annotation[len("Unpack[") : -1]].__annotations__
            parameters += [
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=getattr(kind, "__forward_arg__", kind)
                )
                for name, kind in fields.items()
            ]
        else:
            parameters.append(parameter)
    return signature.replace(parameters=parameters, return_annotation=returns)


def sync_method(builder: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], T]:
    """A method that builds the call and runs it with ``self._run`` (the sync clients)."""

    @functools.wraps(builder)
    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(builder(*args, **kwargs))

    method.__signature__ = _method_signature(builder)  # type: ignore[attr-defined]
    method.builder = builder  # type: ignore[attr-defined]  # read by async_twin
    return method


def async_method(builder: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """A coroutine method that builds the call and awaits ``self._run`` (the async clients)."""

    @functools.wraps(builder)
    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(builder(*args, **kwargs))

    method.__signature__ = _method_signature(builder)  # type: ignore[attr-defined]
    return method


def add_async_twins(target: type, source: type) -> type:
    """Give ``target`` an ``async_method`` for every ``sync_method`` of ``source``: the
    async client and its method groups are derived from the sync ones, not listed again.
    Returns ``target``."""
    for attribute, value in vars(source).items():
        builder = getattr(value, "builder", None)
        if builder is not None and attribute not in vars(target):
            setattr(target, attribute, async_method(builder))
    return target
