"""Input fields every app's serializers share: strict objects and JSON-typed values.

Input serializers reject keys they do not know (a typo such as ``similarity_threshold``
would otherwise be ignored silently) and, for JSON bodies, values of the wrong JSON
type (``"limit": true`` or ``"limit": "20"`` are 400s, not surprises).
"""

from rest_framework import serializers

from anima_site.json_values import JsonValueError, check_json_value


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


class EmptyInput(StrictSerializer):
    pass


class JsonTypedField:
    """Mixed into a DRF field: the value must have one of ``json_types`` as parsed from
    JSON (a boolean is never a number), before the field's own checks run."""

    json_types: tuple[type, ...] = ()

    def to_internal_value(self, data):
        if not isinstance(data, self.json_types) or (isinstance(data, bool) and bool not in self.json_types):
            self.fail("invalid", input=data, value=data)
        return super().to_internal_value(data)


class JsonIntegerField(JsonTypedField, serializers.IntegerField):
    """An integer that must be a JSON number (no booleans, no strings)."""

    json_types = (int, float)


class JsonFloatField(JsonTypedField, serializers.FloatField):
    json_types = (int, float)


class JsonBooleanField(JsonTypedField, serializers.BooleanField):
    json_types = (bool,)


class JsonCharField(JsonTypedField, serializers.CharField):
    json_types = (str,)


class JsonUUIDField(JsonTypedField, serializers.UUIDField):
    """A UUID that must be a JSON string (DRF's field also takes an integer)."""

    json_types = (str,)


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


class QueryBooleanField(serializers.ChoiceField):
    """``true`` or ``false`` in a query string, nothing else."""

    def __init__(self, **kwargs):
        super().__init__(choices=["true", "false"], **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data) == "true"
