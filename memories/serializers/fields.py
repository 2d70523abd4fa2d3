"""Fields that several of the memories' serializers share: content, event time, tags,
conversation id, validity (``asOf``, ``includeSuperseded``, ``supersedes``) and the
before/after range check (input), rounded scores (output)."""

from django.utils import timezone
from rest_framework import serializers
from rest_framework.fields import SkipField

from anima_site.serializers import JsonCharField, JsonUUIDField
from memories.datetimes import UTC_YEAR_RANGE, datetime_in_utc
from memories.models import MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS

MAX_CONVERSATION_ID_CHARS = 200
#: The most memories one memory may supersede in one request.
MAX_SUPERSEDES = 100


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


def tags_field():
    return serializers.ListField(
        child=JsonCharField(min_length=1, max_length=MAX_TAG_CHARS), max_length=MAX_TAGS, required=False
    )


def conversation_id_field():
    return JsonCharField(min_length=1, max_length=MAX_CONVERSATION_ID_CHARS, required=False)


AS_OF_HELP = (
    "ISO 8601: the facts valid at that moment (stored by then, not yet superseded or expired) "
    "instead of the current ones."
)
INCLUDE_SUPERSEDED_HELP = "true: superseded and expired memories too (with their links)."


def check_validity(attrs: dict) -> None:
    """``asOf`` and ``includeSuperseded`` ask for different sets: one at most."""
    if attrs.get("asOf") is not None and attrs.get("includeSuperseded"):
        raise serializers.ValidationError({"asOf": ["Give asOf or includeSuperseded=true, not both."]})


class ValidFromField(EventTimeField):
    """Since when a fact holds: a past moment (default: when it is stored)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value > timezone.now():
            raise serializers.ValidationError("Must not be in the future.")
        return value


def supersedes_field():
    return serializers.ListField(
        child=JsonUUIDField(),
        max_length=MAX_SUPERSEDES,
        required=False,
        help_text="Ids of memories this one corrects: each is superseded by it (validUntil = now).",
    )


def check_range(attrs: dict, after_key: str, before_key: str) -> None:
    after, before = attrs.get(after_key), attrs.get(before_key)
    if after is not None and before is not None and after >= before:
        raise serializers.ValidationError({before_key: [f"Must be later than {after_key}."]})


class RoundedFloatField(serializers.FloatField):
    """A float shown to ``digits`` decimals; left out when the value is None and the field not required."""

    def __init__(self, *, digits: int, **kwargs):
        self.digits = digits
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        if value is None and not self.required:
            raise SkipField()
        return value

    def to_representation(self, value):
        return round(value, self.digits)
