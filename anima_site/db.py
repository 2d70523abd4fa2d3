"""PostgreSQL session set-up that Django leaves to the project.

``fast_timestamptz_loader`` (a ``connection_created`` receiver): Django loads every
``timestamptz`` through its own loader, a Python subclass of psycopg's *pure-Python*
one, so each value is parsed by a regular expression in Python — with psycopg's C
implementation installed (``psycopg[binary]``), a bootstrap of 50 memories parsed ≈ 450
of them per request, a tenth of its Python time. The receiver registers, on each new
connection, a loader that parses with psycopg's C loader and then does what Django's
does (the value in Django's time zone), keeping the ``timezone`` attribute Django's
cursor set-up compares with. Without the C implementation it does nothing.

``CompiledRows``: hot-path reads whose SQL the ORM compiles once per shape.
"""

from django.db import connection
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


class CompiledRows:
    """The rows of a ``values_list`` queryset whose SQL the ORM compiles once per *shape*.

    A hot-path read builds and compiles the same queryset on every request, its SQL
    differing only in values (a namespace, a vector): Django's building and compiling is
    most of the read's Python time. ``rows(shape, build, **values)`` compiles
    ``build(**slots)`` once per ``shape`` — every ``values[name]`` replaced by a marker
    string, so each parameter position is known to be that value or a constant of the
    shape — and then runs that SQL with each request's values. ``shape`` must hold
    everything else the SQL depends on (sizes, the number of values, flags), and each
    value must reach the SQL as a parameter of its own (a marker the ORM changed or
    split is refused: that shape then runs its queryset every time). Rows come as
    psycopg loads them, which is how ``values_list`` gives columns without converters
    (uuid, text, numbers, booleans, timestamps). At most ``max_shapes`` are kept.
    """

    def __init__(self, max_shapes: int = 512):
        self.max_shapes = max_shapes
        self._compiled: dict[object, tuple[str, list]] = {}

    @staticmethod
    def _marker(name: str) -> str:
        return f"\x00anima-slot:{name}\x00"

    def _compile(self, build, names) -> tuple[str, list] | None:
        markers = {self._marker(name): name for name in names}
        sql, params = build(**{name: self._marker(name) for name in names}).query.sql_with_params()
        template = [(True, markers[p]) if isinstance(p, str) and p in markers else (False, p) for p in params]
        placed = {name for is_slot, name in template if is_slot}
        leaked = any(not is_slot and isinstance(p, str) and "anima-slot:" in p for is_slot, p in template)
        if placed != set(names) or leaked:
            return None
        return sql, template

    def rows(self, shape, build, **values) -> list[tuple]:
        compiled = self._compiled.get(shape)
        if compiled is None:
            compiled = self._compile(build, list(values))
            if compiled is None:
                return list(build(**values))
            if len(self._compiled) < self.max_shapes:
                self._compiled[shape] = compiled
        sql, template = compiled
        params = [values[item] if is_slot else item for is_slot, item in template]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def clear(self) -> None:
        self._compiled.clear()

    def shapes(self) -> list:
        return list(self._compiled)


def instances_from_rows(model, fields: list, rows) -> list:
    """Model instances from raw rows whose first ``len(fields)`` values are ``fields``' columns,
    each value through the field's database converters (a JSON column's parse), as
    ``QuerySet.raw`` does but without its per-call column resolution (for a hot-path
    statement whose columns are fixed). Fields not given are deferred. Each instance
    carries the rest of its row as ``extra``."""
    width = len(fields)
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found:
            converters.append((index, expression, found))
    names = [field.attname for field in fields]
    instances = []
    for row in rows:
        values = list(row[:width])
        for index, expression, found in converters:
            for convert in found:
                values[index] = convert(values[index], expression, connection)
        instance = model.from_db(connection.alias, names, values)
        instance.extra = row[width:]
        instances.append(instance)
    return instances
