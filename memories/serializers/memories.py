"""HTTP shapes of the memory resource: add, add-batch, list, get, PATCH, DELETE, restore —
what a body or query string may say, and the ``data`` each answers with — and what every
read shares: ``MemoryOutput`` (a memory's fields) and ``memory_filters``.

The output serializers are the OpenAPI shapes too (``anima_site.openapi.api_responses``
wraps them in the envelope): the views render with the classes the schema documents.
A result that holds a memory beside its own ``embedding_truncated`` flag (a query hit,
an add) is read with ``MemoryOutput(from_result=True)``.
"""

from rest_framework import serializers

from anima_site.serializers import (
    AttributeOutput,
    JsonBooleanField,
    JsonCharField,
    JsonObjectField,
    JsonUUIDField,
    QueryBooleanField,
    StrictSerializer,
)
from memories.filters import MemoryFilters
from memories.models import MAX_TAG_CHARS, MAX_TAGS, Tier
from memories.selectors.memories import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor, InvalidCursorError
from memories.serializers.fields import (
    AS_OF_HELP,
    INCLUDE_SUPERSEDED_HELP,
    ContentField,
    EventTimeField,
    ValidFromField,
    check_range,
    check_validity,
    supersedes_field,
    tags_field,
)
from memories.services.adding import BatchItem


class MemoryAddInput(StrictSerializer):
    content = ContentField()
    category = JsonCharField(max_length=100, required=False, allow_null=True)
    tags = tags_field()
    source = JsonCharField(max_length=100, required=False, allow_null=True)
    isCatalyst = JsonBooleanField(required=False, default=False)
    metadata = JsonObjectField(required=False)
    occurredAt = EventTimeField(
        required=False, help_text="When the remembered thing happened (ISO 8601); default: the time it is stored."
    )
    expiresAt = EventTimeField(
        required=False,
        allow_null=True,
        help_text="After this moment (ISO 8601) the memory behaves as superseded: kept, out of default reads.",
    )
    validFrom = ValidFromField(
        required=False, help_text="Since when the fact holds (ISO 8601, not in the future); default: when it is stored."
    )
    supersedes = supersedes_field()


class MemoryCorrectInput(StrictSerializer):
    """``POST /memories/{id}/correct``: the correction as a new memory (``content`` and
    the add's optional fields), or an existing memory that corrects it (``correctedBy``)."""

    content = ContentField(required=False)
    category = JsonCharField(max_length=100, required=False, allow_null=True)
    tags = tags_field()
    source = JsonCharField(max_length=100, required=False, allow_null=True)
    isCatalyst = JsonBooleanField(required=False, default=False)
    metadata = JsonObjectField(required=False)
    occurredAt = EventTimeField(required=False, help_text="When the remembered thing happened (as on add).")
    expiresAt = EventTimeField(required=False, allow_null=True, help_text="As on add.")
    validFrom = ValidFromField(
        required=False,
        help_text="Since when the correction holds, hence until when the old fact held (not in the future); default: now.",
    )
    correctedBy = JsonUUIDField(
        required=False, help_text="An existing memory that corrects this one (e.g. a suggested correction confirmed)."
    )

    def validate(self, attrs):
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        if "correctedBy" in attrs:
            others = sorted(given - {"correctedBy"})
            if others:
                raise serializers.ValidationError({others[0]: ["Not with correctedBy: the correcting memory exists."]})
        elif "content" not in attrs:
            raise serializers.ValidationError({"content": ["Give content (a new memory) or correctedBy (an existing one)."]})
        return attrs


MAX_BATCH_ITEMS = 100


class BatchItemField(serializers.JSONField):
    """Any parsed JSON value, untouched: the view checks each item as an add body."""

    def to_internal_value(self, data):
        return data


class MemoryAddBatchInput(StrictSerializer):
    """Items are checked one by one in the view: an invalid item does not stop the others."""

    items = serializers.ListField(
        child=BatchItemField(), min_length=1, max_length=MAX_BATCH_ITEMS, help_text="Add bodies, 1-100."
    )


#: Body keys of a memory's fields → the services' keywords (add, add-batch items, PATCH).
MEMORY_KEYWORDS = {
    "content": "content",
    "category": "category",
    "tags": "tags",
    "source": "source",
    "metadata": "metadata",
    "isCatalyst": "is_catalyst",
    "pinned": "pinned",
    "occurredAt": "occurred_at",
    "expiresAt": "expires_at",
    "validFrom": "valid_from",
    "supersedes": "supersedes",
}


def memory_keywords(body: dict) -> dict:
    """A validated add or PATCH body as the services' keyword arguments (absent keys stay absent)."""
    return {MEMORY_KEYWORDS[key]: value for key, value in body.items()}


def batch_item_checked(raw) -> tuple[BatchItem | None, dict | None]:
    """(item, None) when ``raw`` is a valid add body, else (None, {field, message})."""
    serializer = MemoryAddInput(data=raw)
    if serializer.is_valid():
        return BatchItem(**memory_keywords(serializer.validated_data)), None
    field, messages = next(iter(serializer.errors.items()))
    message = messages[0] if isinstance(messages, list) and messages else str(messages)
    return None, {"field": field, "message": str(message)}


def memory_filters(params: dict) -> MemoryFilters:
    """The ``MemoryFilters`` of a validated query body or list query string (the list's
    ``tier`` and ``tag`` arrive as ``tiers`` and ``tags``)."""
    return MemoryFilters(
        tiers=params.get("tiers"),
        category=params.get("category"),
        tags=params.get("tags"),
        metadata=params.get("metadata"),
        source=params.get("source"),
        is_catalyst=params.get("isCatalyst"),
        created_after=params.get("createdAfter"),
        created_before=params.get("createdBefore"),
        last_accessed_after=params.get("lastAccessedAfter"),
        occurred_after=params.get("occurredAfter"),
        occurred_before=params.get("occurredBefore"),
        as_of=params.get("asOf"),
        include_superseded=bool(params.get("includeSuperseded")),
    )


#: API ordering names → Memory fields; ``-`` in front for descending.
LIST_ORDERINGS = {
    "createdAt": "created_at",
    "lastAccessed": "last_accessed",
    "resonancePhi": "resonance_phi",
    "accessCount": "access_count",
}
#: Query-string keys that may be repeated (each value one more condition).
_REPEATABLE_QUERY_KEYS = {"tag"}


def _list_ordering_choices() -> list[str]:
    return [prefix + name for name in LIST_ORDERINGS for prefix in ("", "-")]


class MemoryListInput(StrictSerializer):
    """``GET /memories/``: the query string. ``tag`` may repeat (all must match)."""

    tier = serializers.ChoiceField(choices=Tier.values, required=False, source="tiers")
    category = serializers.CharField(max_length=100, required=False)
    tag = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=MAX_TAG_CHARS),
        max_length=MAX_TAGS,
        required=False,
        source="tags",
    )
    isCatalyst = QueryBooleanField(required=False)
    source = serializers.CharField(max_length=100, required=False)
    createdAfter = serializers.DateTimeField(required=False)
    createdBefore = serializers.DateTimeField(required=False)
    occurredAfter = EventTimeField(required=False)
    occurredBefore = EventTimeField(required=False)
    asOf = EventTimeField(required=False, help_text=AS_OF_HELP)
    includeSuperseded = QueryBooleanField(required=False, default=False, help_text=INCLUDE_SUPERSEDED_HELP)
    ordering = serializers.ChoiceField(choices=_list_ordering_choices(), required=False, default="-createdAt")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False, default=DEFAULT_PAGE_SIZE)
    cursor = serializers.CharField(max_length=1000, required=False)

    def to_internal_value(self, data):
        repeated = {}
        if hasattr(data, "getlist"):
            repeated = {
                key: ["Given more than once."]
                for key in data
                if key not in _REPEATABLE_QUERY_KEYS and len(data.getlist(key)) > 1
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**exc.detail, **repeated}) from None
        if repeated:
            raise serializers.ValidationError(repeated)
        return value

    def validate_tier(self, value):
        return [value]

    def validate_ordering(self, value):
        return ("-" if value.startswith("-") else "") + LIST_ORDERINGS[value.removeprefix("-")]

    def validate_cursor(self, value):
        try:
            return Cursor.decode(value)
        except InvalidCursorError:
            raise serializers.ValidationError("Invalid cursor; use a nextCursor or previousCursor as given.") from None

    def validate(self, attrs):
        check_range(attrs, "createdAfter", "createdBefore")
        check_range(attrs, "occurredAfter", "occurredBefore")
        check_validity(attrs)
        cursor = attrs.get("cursor")
        if cursor is not None and cursor.ordering != attrs["ordering"]:
            raise serializers.ValidationError({"cursor": ["This cursor belongs to another ordering."]})
        return attrs


class MemoryPatchInput(StrictSerializer):
    """``PATCH /memories/{id}/``: the fields given change; ``null`` clears category/source."""

    content = ContentField(required=False)
    category = JsonCharField(max_length=100, required=False, allow_null=True)
    tags = tags_field()
    source = JsonCharField(max_length=100, required=False, allow_null=True)
    isCatalyst = JsonBooleanField(required=False)
    pinned = JsonBooleanField(required=False, help_text="Pinned memories open every bootstrap and never decay.")
    metadata = JsonObjectField(required=False)
    occurredAt = EventTimeField(required=False, help_text="When the remembered thing happened (ISO 8601).")
    expiresAt = EventTimeField(
        required=False, allow_null=True, help_text="After this moment the memory behaves as superseded; null: never."
    )


class MemoryRestoreInput(StrictSerializer):
    """``POST /memories/{id}/restore/`` takes no fields (any key is a 400)."""


class MemoryDeleteInput(StrictSerializer):
    purge = QueryBooleanField(required=False, default=False, help_text="true: remove for good (not restorable).")
    chain = QueryBooleanField(
        required=False,
        default=False,
        help_text="With purge=true: the whole chain of corrections too (what it superseded and what superseded it).",
    )

    def validate(self, attrs):
        if attrs["chain"] and not attrs["purge"]:
            raise serializers.ValidationError({"chain": ["Only with purge=true."]})
        return attrs


# --- Output -----------------------------------------------------------------------------


class MemoryOutput(AttributeOutput):
    """A memory as the API shows it: every public field, never the embedding (read by
    ``AttributeOutput``: a query's hits and a bootstrap's list are on the hot path)."""

    id = serializers.UUIDField()
    namespace = serializers.CharField()
    content = serializers.CharField()
    contentHash = serializers.CharField(source="content_hash")
    category = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    source = serializers.CharField(allow_null=True)
    metadata = serializers.JSONField()
    tier = serializers.CharField()
    tierLastUpdated = serializers.DateTimeField(source="tier_last_updated")
    accessCount = serializers.IntegerField(source="access_count")
    lastAccessed = serializers.DateTimeField(source="last_accessed")
    resonancePhi = serializers.FloatField(source="resonance_phi")
    phiDecayedAt = serializers.DateTimeField(source="phi_decayed_at", allow_null=True)
    isCatalyst = serializers.BooleanField(source="is_catalyst")
    pinned = serializers.BooleanField()
    mergedInto = serializers.UUIDField(source="merged_into_id", allow_null=True)
    supersededBy = serializers.UUIDField(
        source="superseded_by_id", allow_null=True, help_text="The memory that corrected this one; null while current."
    )
    supersedes = serializers.ListField(child=serializers.UUIDField(), help_text="The memories this one corrected.")
    validFrom = serializers.DateTimeField(source="valid_from")
    validUntil = serializers.DateTimeField(
        source="valid_until", allow_null=True, help_text="When a correction superseded it; null while current."
    )
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    embeddingTruncated = serializers.SerializerMethodField()
    occurredAt = serializers.DateTimeField(source="occurred_at")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    #: False: the instance is a ``Memory`` (its flag the queryset's ``embedding_truncated``
    #: annotation, False when the read did not join it). True: a result holding the memory
    #: (``.memory``) beside its own ``embedding_truncated`` (a query hit, an add).
    from_result = False

    def __init__(self, *args, from_result: bool | None = None, **kwargs):
        if from_result is not None:
            self.from_result = from_result
        super().__init__(*args, **kwargs)

    def shared_plan_key(self):
        return (type(self), self.from_result)  # no context; fields and methods depend on from_result only

    def shared_plan_kwargs(self) -> dict:
        return {"from_result": self.from_result}

    def get_fields(self):
        fields = super().get_fields()
        if self.from_result:
            for name in MemoryOutput._declared_fields:
                field = fields[name]
                if not isinstance(field, serializers.SerializerMethodField):
                    field.source = f"memory.{field.source or name}"
        return fields

    def get_embeddingTruncated(self, shown) -> bool:
        if self.from_result:
            return shown.embedding_truncated
        return bool(getattr(shown, "embedding_truncated", False))


# ``memory``: the add result (the memory and its embedding flag).
class AddData(serializers.Serializer):
    memory = MemoryOutput(from_result=True)
    isDuplicate = serializers.BooleanField()
    message = serializers.CharField()


# A ``memories.services.correcting.Correction``.
class CorrectData(serializers.Serializer):
    memory = MemoryOutput(from_result=True, help_text="The memory that corrects (new, or the correctedBy one).")
    corrected = MemoryOutput(help_text="The corrected memory, now superseded.")
    message = serializers.CharField()


class BatchItemOutput(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "invalid"])
    memoryId = serializers.UUIDField(allow_null=True)
    field = serializers.CharField(required=False, help_text="Invalid items: the field at fault.")
    message = serializers.CharField(required=False)


class BatchCounts(serializers.Serializer):
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    invalid = serializers.IntegerField()


class AddBatchData(serializers.Serializer):
    items = BatchItemOutput(many=True)
    counts = BatchCounts()


# A ``memories.selectors.memories.MemoryPage``.
class MemoryPageOutput(serializers.Serializer):
    memories = MemoryOutput(many=True)
    count = serializers.IntegerField()
    nextCursor = serializers.CharField(source="next_cursor", allow_null=True)
    previousCursor = serializers.CharField(source="previous_cursor", allow_null=True)


class MemoryData(serializers.Serializer):
    memory = MemoryOutput()
    message = serializers.CharField(required=False)


# A ``memories.services.forgetting.PurgeCounts``: these four, then what the apps that
# received the purge counted.
class PurgeCountsOutput(serializers.Serializer):
    memories = serializers.IntegerField()
    copiesScrubbed = serializers.IntegerField(source="copies_scrubbed")
    handshakes = serializers.IntegerField()
    taskRecords = serializers.IntegerField(source="tasks")

    def to_representation(self, counts):
        return {**super().to_representation(counts), **counts.other_rows}


class DeletedOrPurged(serializers.Serializer):
    id = serializers.UUIDField()
    deletedAt = serializers.DateTimeField(required=False)
    purged = serializers.BooleanField(required=False)
    counts = PurgeCountsOutput(required=False)
    message = serializers.CharField()
