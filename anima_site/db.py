"""PostgreSQL session set-up that Django leaves to the project.

``fast_timestamptz_loader`` (a ``connection_created`` receiver): Django loads every
``timestamptz`` through its own loader, a Python subclass of psycopg's *pure-Python*
one, so each value is parsed by a regular expression in Python — with psycopg's C
implementation installed (``psycopg[binary]``), a bootstrap of 50 memories parsed ≈ 450
of them per request, a tenth of its Python time. The receiver registers, on each new
connection, a loader that parses with psycopg's C loader and then does what Django's
does (the value in Django's time zone), keeping the ``timezone`` attribute Django's
cursor set-up compares with. Without the C implementation it does nothing.
"""

from psycopg import adapters
from psycopg.adapt import Loader
from psycopg.pq import Format

TIMESTAMPTZ = "timestamptz"


def _c_loader():
    loader = adapters.get_loader(adapters.types[TIMESTAMPTZ].oid, Format.TEXT)
    return loader if loader.__module__.startswith("psycopg_binary") else None


def fast_timestamptz_loader(sender, connection, **kwargs) -> None:
    if connection.vendor != "postgresql" or connection.timezone is None:
        return
    c_loader = _c_loader()
    if c_loader is None:
        return
    timezone = connection.timezone

    class TimestamptzLoader(Loader):
        """Django's ``BaseTzLoader`` with psycopg's C parser: the instant, in ``timezone``."""

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._parse = c_loader(oid, context).load

        def load(self, data):
            return self._parse(data).astimezone(timezone)

    TimestamptzLoader.timezone = timezone
    connection.connection.adapters.register_loader(TIMESTAMPTZ, TimestamptzLoader)
