"""HTTP shapes only: camelCase input validation with the spec's bounds, and output.

Input serializers reject keys they do not know (a typo such as ``similarity_threshold``
would otherwise be ignored silently) and, for JSON bodies, values of the wrong JSON
type (``"limit": true`` or ``"limit": "20"`` are 400s, not surprises).
"""

from rest_framework import serializers

from anima_site.json_values import JsonValueError, check_json_value

from memories.datetimes import UTC_YEAR_RANGE, datetime_in_utc
from memories.models import MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS, Tier
from memories.services.querying import MODE_HYBRID, MODE_SEMANTIC

MAX_QUERY_CHARS = 5000
MAX_QUERY_LIMIT = 100
MAX_BOOTSTRAP_LIMIT = 200
MAX_CONVERSATION_ID_CHARS = 200


class StrictSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        errors = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = {**exc.detail, **errors}
        if errors:
            raise serializers.ValidationError(errors)
        return value


class JsonIntegerField(serializers.IntegerField):
    """An integer that must be a JSON number (no booleans, no strings)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class JsonCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ContentField(JsonCharField):
    """Stored exactly as sent (no trimming; the hash is of these bytes), but not blank."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, min_length=1, max_length=MAX_CONTENT_CHARS, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.strip():
            self.fail("blank")
        return value


class EventTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime given as a JSON string, inside years 1–9999 in UTC (a value
    that only fits in its own time zone could not be stored and read back)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", format="ISO 8601")
        try:
            value = super().to_internal_value(data)
            datetime_in_utc(value)
        except (OverflowError, ValueError):
            raise serializers.ValidationError(f"Must be a date and time {UTC_YEAR_RANGE}.") from None
        return value


def _tags_field():
    return serializers.ListField(
        child=JsonCharField(min_length=1, max_length=MAX_TAG_CHARS), max_length=MAX_TAGS, required=False
    )


def _conversation_id_field():
    return JsonCharField(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=False)


class JsonObjectField(serializers.JSONField):
    """A JSON object the database can store (``anima_site.json_values``: no NUL or lone
    surrogate, finite numbers, depth ≤ 32, at most ``ANIMA_METADATA_MAX_BYTES``)."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        try:
            check_json_value(data)
        except JsonValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return data


class MemoryAddInput(StrictSerializer):
    content = ContentField()
    category = JsonCharField(max_length=100, required=False, allow_null=True)
    tags = _tags_field()
    source = JsonCharField(max_length=100, required=False, allow_null=True)
    isCatalyst = JsonBooleanField(required=False, default=False)
    metadata = JsonObjectField(required=False)
    occurredAt = EventTimeField(
        required=False, help_text="When the remembered thing happened (ISO 8601); default: the time it is stored."
    )


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


class MemoryQueryInput(StrictSerializer):
    query = JsonCharField(min_length=1, max_length=MAX_QUERY_CHARS, trim_whitespace=False)
    limit = JsonIntegerField(min_value=1, max_value=MAX_QUERY_LIMIT, required=False, default=20)
    similarityThreshold = JsonFloatField(min_value=0.0, max_value=1.0, required=False)
    tiers = serializers.ListField(child=serializers.ChoiceField(choices=Tier.values), required=False, allow_empty=False)
    conversationId = _conversation_id_field()
    category = JsonCharField(max_length=100, required=False)
    tags = _tags_field()
    mode = serializers.ChoiceField(
        choices=[MODE_HYBRID, MODE_SEMANTIC],
        required=False,
        default=MODE_HYBRID,
        help_text="hybrid (default): meaning and words; semantic: meaning only.",
    )
    metadata = JsonObjectField(
        required=False, help_text="JSON containment: memories whose metadata contains this object."
    )
    source = JsonCharField(max_length=100, required=False)
    createdAfter = serializers.DateTimeField(required=False)
    createdBefore = serializers.DateTimeField(required=False)
    lastAccessedAfter = serializers.DateTimeField(required=False)
    occurredAfter = EventTimeField(required=False, help_text="Only memories that happened at or after this time.")
    occurredBefore = EventTimeField(required=False, help_text="Only memories that happened before this time.")
    recencyHalfLifeDays = JsonFloatField(
        min_value=0.001, max_value=36500, required=False, help_text="Weight × 0.5 ** (days since last access / this)."
    )

    def validate_query(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs):
        _check_range(attrs, "occurredAfter", "occurredBefore")
        return attrs


def _check_range(attrs: dict, after_key: str, before_key: str) -> None:
    after, before = attrs.get(after_key), attrs.get(before_key)
    if after is not None and before is not None and after >= before:
        raise serializers.ValidationError({before_key: [f"Must be later than {after_key}."]})


class QueryBooleanField(serializers.ChoiceField):
    """``true`` or ``false`` in a query string, nothing else."""

    def __init__(self, **kwargs):
        super().__init__(choices=["true", "false"], **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data) == "true"


class MemoryBootstrapInput(StrictSerializer):
    conversationId = serializers.CharField(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_BOOTSTRAP_LIMIT, required=False, default=50)
    includeActive = QueryBooleanField(required=False, default=True)
    includeThread = QueryBooleanField(required=False, default=True)
    includeStable = QueryBooleanField(required=False, default=True)
    activeLimit = serializers.IntegerField(min_value=0, max_value=MAX_BOOTSTRAP_LIMIT, required=False)
    maxChars = serializers.IntegerField(min_value=1, required=False)


MAX_FEEDBACK_IDS = 100


class JsonUUIDField(serializers.UUIDField):
    """A UUID that must be a JSON string (DRF's field also takes an integer)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class MemoryFeedbackInput(StrictSerializer):
    """``POST /memories/feedback``: the ids as sent (1-100), repeats counted once."""

    memoryIds = serializers.ListField(child=JsonUUIDField(), min_length=1, max_length=MAX_FEEDBACK_IDS)
    useful = JsonBooleanField(help_text="true: the memories helped (φ up); false: they misled (φ down).")
    conversationId = _conversation_id_field()

    def validate_memoryIds(self, value):
        return list(dict.fromkeys(value))


class FeedbackMemoryOutput(serializers.Serializer):
    memoryId = serializers.UUIDField(source="id")
    resonancePhi = serializers.FloatField(source="resonance_phi")
    accessCount = serializers.IntegerField(source="access_count")


class MemoryOutput(serializers.Serializer):
    """A memory as the API shows it: every public field, never the embedding."""

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
    embeddingTruncated = serializers.SerializerMethodField()
    occurredAt = serializers.DateTimeField(source="occurred_at")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    def get_embeddingTruncated(self, memory) -> bool:
        return bool(getattr(memory, "embedding_truncated", False))


class QueryHitOutput(MemoryOutput):
    similarity = serializers.SerializerMethodField()
    relevance = serializers.SerializerMethodField()
    structuralWeight = serializers.SerializerMethodField()

    def get_similarity(self, memory) -> float:
        return round(memory.similarity, 6)

    def get_relevance(self, memory) -> float:
        return round(memory.relevance, 6)

    def get_structuralWeight(self, memory) -> float:
        return round(memory.structural_weight, 6)


# --- The memory resource (list, PATCH, restore) -------------------------------------------
# (Imported here, not at the top, so that this block stays one self-contained addition.)
from memories.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor, InvalidCursorError  # noqa: E402

MAX_LIST_LIMIT = MAX_PAGE_SIZE
DEFAULT_LIST_LIMIT = DEFAULT_PAGE_SIZE

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

    tier = serializers.ChoiceField(choices=Tier.values, required=False)
    category = serializers.CharField(max_length=100, required=False)
    tag = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=MAX_TAG_CHARS), max_length=MAX_TAGS, required=False
    )
    isCatalyst = QueryBooleanField(required=False)
    source = serializers.CharField(max_length=100, required=False)
    createdAfter = serializers.DateTimeField(required=False)
    createdBefore = serializers.DateTimeField(required=False)
    occurredAfter = EventTimeField(required=False)
    occurredBefore = EventTimeField(required=False)
    ordering = serializers.ChoiceField(choices=_list_ordering_choices(), required=False, default="-createdAt")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIST_LIMIT, required=False, default=DEFAULT_LIST_LIMIT)
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

    def validate_ordering(self, value):
        return ("-" if value.startswith("-") else "") + LIST_ORDERINGS[value.removeprefix("-")]

    def validate_cursor(self, value):
        try:
            return Cursor.decode(value)
        except InvalidCursorError:
            raise serializers.ValidationError("Invalid cursor; use a nextCursor or previousCursor as given.") from None

    def validate(self, attrs):
        _check_range(attrs, "createdAfter", "createdBefore")
        _check_range(attrs, "occurredAfter", "occurredBefore")
        cursor = attrs.get("cursor")
        if cursor is not None and cursor.ordering != attrs["ordering"]:
            raise serializers.ValidationError({"cursor": ["This cursor belongs to another ordering."]})
        return attrs


class MemoryPatchInput(StrictSerializer):
    """``PATCH /memories/{id}/``: the fields given change; ``null`` clears category/source."""

    content = ContentField(required=False)
    category = JsonCharField(max_length=100, required=False, allow_null=True)
    tags = _tags_field()
    source = JsonCharField(max_length=100, required=False, allow_null=True)
    isCatalyst = JsonBooleanField(required=False)
    pinned = JsonBooleanField(required=False, help_text="Pinned memories open every bootstrap and never decay.")
    metadata = JsonObjectField(required=False)
    occurredAt = EventTimeField(required=False, help_text="When the remembered thing happened (ISO 8601).")


class MemoryRestoreInput(StrictSerializer):
    """``POST /memories/{id}/restore/`` takes no fields (any key is a 400)."""


class MemoryPageOutput(serializers.Serializer):
    memories = MemoryOutput(many=True)
    count = serializers.IntegerField()
    nextCursor = serializers.CharField(allow_null=True)
    previousCursor = serializers.CharField(allow_null=True)


class MemoryDeletedOutput(serializers.Serializer):
    id = serializers.UUIDField()
    deletedAt = serializers.DateTimeField()
    message = serializers.CharField()


class MemoryDeleteInput(StrictSerializer):
    purge = QueryBooleanField(required=False, default=False, help_text="true: remove for good (not restorable).")


class NamespacePurgeInput(StrictSerializer):
    confirm = JsonCharField(help_text="The namespace being purged, typed again.")
