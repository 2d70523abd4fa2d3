"""Memories as the API shows them, written by PostgreSQL: ``MemoryOutput``'s fields as one
``json_build_object`` (bootstrap's chosen memories, a query's hits), so that the hot paths
load no model instance and format no datetime in Python. Tests hold the result equal to
``MemoryOutput``'s, key for key."""

from functools import cache
from uuid import UUID

from django.db import connection
from rest_framework import serializers

from anima_site.json_values import json_loads
from memories.models import Memory, MemoryEmbedding, TierCount
from memories.serializers.memories import MemoryOutput


def _utc_iso_sql(column: str) -> str:
    """``column`` (timestamptz) as the API writes a datetime: ISO 8601 in UTC with ``Z``,
    microseconds only when there are any (Python's ``isoformat``, DRF's ``DateTimeField``)."""
    return f"""replace(to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '.000000Z', 'Z')"""


def _output_sql(field, columns: dict[str, str]) -> str:
    """The SQL of one ``MemoryOutput`` field's JSON value, for a memory ``m`` joined to its
    embedding ``e``; ``columns`` replaces a column's expression (by attname). A field of a
    kind this does not know is an error."""
    if isinstance(field, serializers.SerializerMethodField):
        if field.field_name == "embeddingTruncated":
            return columns.get("embedding_truncated", "coalesce(e.truncated, false)")
    else:
        model_field = Memory._meta.get_field(field.source)
        column = columns.get(model_field.attname, f"m.{model_field.column}")
        kind = type(field)
        if kind is serializers.DateTimeField:
            return _utc_iso_sql(column)
        if kind is serializers.UUIDField:
            return f"{column}::text"
        if kind is serializers.ListField:
            return f"to_json({column})"
        if kind in (serializers.CharField, serializers.IntegerField, serializers.FloatField, serializers.BooleanField):
            return column
        if kind is serializers.JSONField:
            return column
    raise TypeError(f"MemoryOutput.{field.field_name}: no SQL form for {type(field).__name__}")


def memory_output_sql(columns: dict[str, str] | None = None) -> str:
    """A ``json_build_object`` of a memory ``m`` as ``MemoryOutput`` shows it (same keys,
    same order), ``columns`` replacing columns by attname (``embedding_truncated`` for the
    flag, else the join ``e``'s)."""
    fields = MemoryOutput().fields.items()
    return "json_build_object(" + ", ".join(f"'{name}', {_output_sql(field, columns or {})}" for name, field in fields) + ")"


@cache
def _shown_json_sql() -> str:
    return (
        f"SELECT json_agg({memory_output_sql()})::text FROM {Memory._meta.db_table} m "
        f"LEFT JOIN {MemoryEmbedding._meta.db_table} e ON e.memory_id = m.id WHERE m.id = ANY(%(ids)s::uuid[])"
    )


@cache
def _shown_json_and_counts_sql() -> str:
    return (
        f"SELECT ({_shown_json_sql()}), (SELECT json_object_agg(c.tier, c.count)::text "
        f"FROM {TierCount._meta.db_table} c WHERE c.namespace = %(namespace)s)"
    )


def memories_shown_json(ids: list[UUID]) -> dict[str, dict]:
    """The memories ``ids`` (live or not) exactly as ``MemoryOutput`` shows them, by id
    (text), the representation built by PostgreSQL: one statement, one JSON document,
    no model instance, no datetime parsed or formatted in Python (bootstrap's second read:
    most of its Python time went to loading 27 columns of 50 rows and writing them back
    out). ``tests/memories/test_bootstrap.py`` holds it equal to ``MemoryOutput``'s."""
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_shown_json_sql(), {"ids": list(ids)})
        (document,) = cursor.fetchone()
    return _by_id(document)


def memories_shown_json_and_counts(ids: list[UUID], *, namespace: str) -> tuple[dict[str, dict], dict[str, int]]:
    """``memories_shown_json(ids)`` and the namespace's ``TierCount`` rows as {tier: count},
    in one round trip (bootstrap shows both)."""
    with connection.cursor() as cursor:
        cursor.execute(_shown_json_and_counts_sql(), {"ids": list(ids), "namespace": namespace})
        document, counts = cursor.fetchone()
    return _by_id(document), json_loads(counts or "{}")


def _by_id(document: str | None) -> dict[str, dict]:
    return {shown["id"]: shown for shown in json_loads(document or "[]")}
