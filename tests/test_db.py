"""anima_site.db: timestamptz values parsed by psycopg's C loader, as Django's own loader would;
hot-path statements compiled once per shape."""

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.test.utils import CaptureQueriesContext
from psycopg.pq import Format

from anima_site.db import CompiledRows, instances_from_rows
from memories.models import Memory
from memories.selectors.memories import memories_shown, memory_output_queryset
from memories.serializers.memories import MemoryOutput
from tests.factories import axis, make_memories

pytestmark = pytest.mark.django_db

SAMPLES = [
    "2026-12-02 10:00:00+00",
    "2026-12-02 10:00:00.123456+05:30",
    "1999-01-01 00:00:00.5-08",
    "0001-01-01 00:00:00+00",
    "2026-03-29 02:30:00+01",
]


def _loaded(samples):
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::timestamptz[])", [samples])
        return [row[0] for row in cursor.fetchall()]


def test_timestamptz_values_come_from_the_c_parser_in_djangos_time_zone():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(connection.connection.adapters.types["timestamptz"].oid, Format.TEXT)

    values = _loaded(SAMPLES)

    assert not issubclass(loader, BaseTzLoader)  # not Django's pure-Python one
    assert loader.timezone is connection.timezone  # what Django's cursor set-up compares
    assert all(value.tzinfo is datetime.UTC for value in values)
    assert values[1] == datetime.datetime(2026, 12, 2, 4, 30, 0, 123456, tzinfo=datetime.UTC)


def test_timestamptz_values_equal_djangos_loader():
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::timestamptz[])::text", [SAMPLES])
        texts = [row[0] for row in cursor.fetchall()]

    class DjangoLoader(BaseTzLoader):
        timezone = connection.timezone

    django_loader = DjangoLoader(connection.connection.adapters.types["timestamptz"].oid, connection.connection)
    assert _loaded(SAMPLES) == [django_loader.load(text.encode()) for text in texts]


def _by_namespace(*, namespace):
    return Memory.objects.filter(namespace=namespace).order_by("content").values_list("content", "tier")


def _by_word(*, word):
    return Memory.objects.filter(content__icontains=word).order_by("content").values_list("content", flat=False)


def test_compiled_rows_compile_once_per_shape_and_answer_as_the_queryset():
    make_memories([{"content": "a1"}, {"content": "a2"}], namespace="ns-a", with_embeddings=False)
    make_memories([{"content": "b1"}], namespace="ns-b", with_embeddings=False)
    statements = CompiledRows()

    first = statements.rows("by namespace", _by_namespace, namespace="ns-a")
    with CaptureQueriesContext(connection) as captured:
        second = statements.rows("by namespace", _by_namespace, namespace="ns-b")

    assert first == list(_by_namespace(namespace="ns-a")) == [("a1", "active"), ("a2", "active")]
    assert second == list(_by_namespace(namespace="ns-b")) == [("b1", "active")]
    assert statements.shapes() == ["by namespace"]
    assert len(captured.captured_queries) == 1


def test_compiled_rows_refuse_a_value_the_orm_rewrites():
    # icontains wraps (and escapes) the value: the marker is not a parameter of its own.
    make_memories([{"content": "50% off"}, {"content": "500 off"}], with_embeddings=False)
    statements = CompiledRows()

    rows = statements.rows("by word", _by_word, word="0%")

    assert rows == [("50% off",)]
    assert statements.shapes() == []


def test_compiled_rows_keep_at_most_max_shapes():
    statements = CompiledRows(max_shapes=1)

    statements.rows(1, _by_namespace, namespace="x")
    statements.rows(2, _by_namespace, namespace="x")

    assert statements.shapes() == [1]


def test_instances_from_rows_convert_columns_as_the_orm_does():
    [made] = make_memories([{"content": "with metadata", "metadata": {"k": [1, 2]}, "tags": ["t"]}], with_embeddings=False)
    fields = [field for field in Memory._meta.concrete_fields if field.name != "search_vector"]
    columns = ", ".join(field.column for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}, 'extra' FROM memories_memory WHERE id = %s", [made.id])
        [shown] = instances_from_rows(Memory, fields, cursor.fetchall())

    orm = Memory.objects.get(pk=made.id)
    assert shown.metadata == {"k": [1, 2]} and shown.tags == ["t"]
    assert all(getattr(shown, f.attname) == getattr(orm, f.attname) for f in fields)
    assert shown.extra == ("extra",)
    assert "search_vector" in shown.get_deferred_fields()


def test_memories_shown_are_the_output_querysets_memories_in_one_compiled_statement():
    made = make_memories([{"content": "one", "metadata": {"a": 1}, "vector": axis(0)}, {"content": "two", "vector": axis(1)}])
    ids = [m.id for m in made]

    shown = memories_shown(ids)
    with CaptureQueriesContext(connection) as captured:
        again = memories_shown(ids[:1])

    expected = {m.pk: m for m in memory_output_queryset().filter(pk__in=ids)}
    assert set(shown) == set(expected) and set(again) == {ids[0]}
    for memory_id, memory in expected.items():
        assert MemoryOutput().to_representation(shown[memory_id]) == MemoryOutput().to_representation(memory)
    assert len(captured.captured_queries) == 1
    assert memories_shown([]) == {}
