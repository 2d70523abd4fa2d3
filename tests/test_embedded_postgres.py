"""The embedded server's settings (when the suite runs on it, as ``scripts/test`` does
unless ``DATABASE_URL`` is set)."""

import os

import pytest
from django.db import connection

from anima_site import embedded_postgres

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="an external server keeps its own settings")
def test_the_embedded_server_runs_with_its_settings():
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'")
        assert cursor.fetchone()[0] == embedded_postgres.shared_buffers_mb()
        cursor.execute("SHOW random_page_cost")
        assert cursor.fetchone()[0] == "1.1"


def test_shared_buffers_are_a_quarter_of_the_memory_within_bounds(monkeypatch):
    monkeypatch.delenv("ANIMA_DB_SHARED_BUFFERS_MB", raising=False)
    pages = {"SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(embedded_postgres.os, "sysconf", lambda name: pages[name])
    for total_mb, expected in ((256, 128), (4096, 1024), (16384, 4096), (65536, 8192)):
        pages["SC_PHYS_PAGES"] = total_mb * 256
        assert embedded_postgres.shared_buffers_mb() == expected

    monkeypatch.setenv("ANIMA_DB_SHARED_BUFFERS_MB", "512")
    assert embedded_postgres.shared_buffers_mb() == 512
    monkeypatch.setenv("ANIMA_DB_SHARED_BUFFERS_MB", "16")
    assert embedded_postgres.shared_buffers_mb() == 128
