"""Input fields every app's serializers share: strict objects and JSON-typed values; and
``AttributeOutput``, the output serializer that reads plain attributes fast.

Input serializers reject keys they do not know (a typo such as ``similarity_threshold``
would otherwise be ignored silently) and, for JSON bodies, values of the wrong JSON
type (``"limit": true`` or ``"limit": "20"`` are 400s, not surprises).
"""

from datetime import datetime, timedelta
from operator import attrgetter

from django.conf import settings
from rest_framework import ISO_8601, serializers
from rest_framework.fields import SkipField
from rest_framework.settings import api_settings

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


_ZERO = timedelta(0)
#: ``AttributeOutput`` plans shared by ``shared_plan_key``.
_SHARED_PLANS: dict = {}


class AttributeOutput(serializers.Serializer):
    """An output serializer whose plain fields read their source with ``operator.attrgetter``.

    DRF's ``Serializer.to_representation`` reads every field through
    ``fields.get_attribute``, which checks each step for a ``Mapping`` (an ABC check) and
    for a simple callable (``inspect``): most of the time of a list of memories (measured:
    3.5 ms for 50). For a field of a base DRF class whose source is a dotted attribute
    path of a plain object (a model column, a dataclass field), the value is the same read
    by ``attrgetter``; a ``None`` is shown as ``None`` and anything else goes through the
    field's own ``to_representation``, exactly as DRF does (datetimes by ``_converter``).
    Any other field (a method field, a field that overrides ``get_attribute``,
    ``source="*"``), or a source that names a method, is read DRF's way. Not for mappings. ``tests/test_serializers.py`` holds it equal to DRF's output.
    """

    def shared_plan_key(self):
        """A key under which every instance of this class shares one plan, or None (the
        default: a plan per instance). A subclass whose fields and methods depend on
        nothing per instance but this key (no context) may share: building the plan —
        DRF's deep copy of every declared field — is then done once per process."""
        return None

    def shared_plan_kwargs(self) -> dict:
        """What makes a fresh, unbound instance with the same plan (``shared_plan_key``)."""
        return {}

    def _plan(self):
        plan = self.__dict__.get("_attribute_plan")
        if plan is None:
            key = self.shared_plan_key()
            plan = None if key is None else _SHARED_PLANS.get(key)
            if plan is None:
                # A shared plan's fields are bound to a fresh instance, not to this one (whose
                # parent chain holds a response's data).
                plan = (self if key is None else type(self)(**self.shared_plan_kwargs()))._build_plan()
                if key is not None:
                    _SHARED_PLANS[key] = plan
            self.__dict__["_attribute_plan"] = plan
        return plan

    def _build_plan(self):
        plan = []
        for field in self._readable_fields:
            plain = (
                type(field).get_attribute is serializers.Field.get_attribute
                and field.source != "*"
                and field.source_attrs
            )
            read = attrgetter(".".join(field.source_attrs)) if plain else None
            plan.append((field.field_name, read, field, _converter(field)))
        return plan

    def to_representation(self, instance):
        shown = {}
        for name, read, field, convert in self._plan():
            if read is None:
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
            else:
                value = read(instance)
                if callable(value):  # a method as source: DRF calls it
                    value = field.get_attribute(instance)
            shown[name] = None if value is None else convert(value)
        return shown


def _converter(field):
    """``field.to_representation``, or for a plain ISO 8601 ``DateTimeField`` in a UTC
    project the same string without DRF's per-value time-zone lookup (a thread-local
    read through asgiref: most of a memory's serialization): an aware UTC value is its
    ``isoformat()`` with ``Z``, anything else goes to the field."""
    utc_iso = (
        type(field) is serializers.DateTimeField
        and getattr(field, "format", api_settings.DATETIME_FORMAT) == ISO_8601
        and not hasattr(field, "timezone")
        and settings.TIME_ZONE == "UTC"
        and settings.USE_TZ
    )
    if not utc_iso:
        return field.to_representation

    def convert(value):
        if isinstance(value, datetime) and value.utcoffset() == _ZERO:
            text = value.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return field.to_representation(value)

    return convert
