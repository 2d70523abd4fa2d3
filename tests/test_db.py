"""anima_site.db: timestamptz values parsed by psycopg's C loader, as Django's own loader would."""

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.pq import Format

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
