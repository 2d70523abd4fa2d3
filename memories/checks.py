"""System checks that stop start-up before a bad configuration can write anything.

They read the database, so they carry the ``database`` tag: ``manage.py migrate`` and
``manage.py check --database default`` run them, and the serve command runs the latter
before it starts the web server and the worker.
"""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections

MIN_PGVECTOR = (0, 8)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


@register(Tags.database)
def check_pgvector_version(app_configs=None, databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT e.extversion, a.default_version FROM pg_available_extensions a "
                "LEFT JOIN pg_extension e ON e.extname = a.name WHERE a.name = 'vector'"
            )
            row = cursor.fetchone()
    except DatabaseError as exc:
        return [Error(f"cannot read the pgvector version: {exc}", id="anima.E001")]
    if row is None:
        return [Error("the pgvector extension is not available on this PostgreSQL server", id="anima.E001")]
    installed, available = row
    version = installed or available
    if _version(version) < MIN_PGVECTOR:
        return [
            Error(
                f"pgvector {version} is too old: Anima needs >= 0.8 for iterative index scans",
                hint="Upgrade the extension (ALTER EXTENSION vector UPDATE) or the server package.",
                id="anima.E002",
            )
        ]
    return []


@register(Tags.database)
def check_embedding_space(app_configs=None, databases=None, **kwargs):
    """The configured provider must produce vectors of the stored space: same dimension, same model."""
    if not databases or "default" not in databases:
        return []
    model_id = settings.ANIMA_EMBEDDING_MODEL
    dimensions = settings.ANIMA_EMBEDDING_DIMENSIONS
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass('memories_memoryembedding') AND a.attname = 'embedding' "
                "AND NOT a.attisdropped"
            )
            row = cursor.fetchone()
            if row is None:  # not migrated yet: nothing stored, nothing to disagree with
                return []
            column_type = row[0]
            # Two range probes of the embedding_model index: O(log n) at any size.
            cursor.execute(
                "(SELECT embedding_model FROM memories_memoryembedding WHERE embedding_model < %s LIMIT 1) "
                "UNION ALL (SELECT embedding_model FROM memories_memoryembedding WHERE embedding_model > %s LIMIT 1)",
                [model_id, model_id],
            )
            other_model = cursor.fetchone()
    except DatabaseError as exc:
        return [Error(f"cannot read the embedding space: {exc}", id="anima.E003")]
    errors = []
    if column_type != f"vector({dimensions})":
        errors.append(
            Error(
                f"the embedding column is {column_type} but the {settings.ANIMA_EMBEDDING_PROVIDER} provider "
                f"is configured for {dimensions} dimensions (ANIMA_EMBEDDING_DIMENSIONS)",
                hint="Use the model the data was embedded with, or re-embed the memories into the new space.",
                id="anima.E004",
            )
        )
    if other_model:
        errors.append(
            Error(
                f"stored memories were embedded with {other_model[0]!r} but ANIMA_EMBEDDING_MODEL is {model_id!r}: "
                "vectors of two models are never compared",
                hint="Use the model the data was embedded with, or re-embed the memories into the new space.",
                id="anima.E005",
            )
        )
    return errors
