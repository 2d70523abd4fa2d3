"""Relevance first (SPEC §3, revised 2026-12) and event time.

- The resonant HNSW graph goes: φ can now add at most 0.05 to a memory's relevance, so a
  memory outside the similarity pool is found by widening the pool, not by a second
  graph with a flag kept in sync on two tables (its trigger, index, columns and the
  5-minute sync schedule are removed).
- ``occurred_at``: when the remembered thing happened, ``created_at`` for the rows that
  exist.
- The full-text column also holds the words of that date ("8 May 2023"), through
  ``anima_date_words``: declared IMMUTABLE because it formats in UTC with English month
  names (no ``TM`` prefix, so no locale), which is what a generated column needs.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.utils.timezone
from django.db import migrations, models

import memories.models

RESONANCE_SCHEDULE = ("anima: resonance sync", "memories.tasks.sync_resonance")

DROP_RESONANCE_TRIGGER = """
DROP TRIGGER IF EXISTS embedding_resonance_init ON memories_memoryembedding;
-- CASCADE: the same trigger on an unfinished reembed's shadow table goes too.
DROP FUNCTION IF EXISTS anima_embedding_resonance_init() CASCADE;
"""

RESTORE_RESONANCE_TRIGGER = """
CREATE FUNCTION anima_embedding_resonance_init() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.resonant := COALESCE(
        (SELECT m.resonance_indexed FROM memories_memory m WHERE m.id = NEW.memory_id), false
    );
    RETURN NEW;
END $$;
CREATE TRIGGER embedding_resonance_init BEFORE INSERT ON memories_memoryembedding
FOR EACH ROW EXECUTE FUNCTION anima_embedding_resonance_init();
"""

DATE_WORDS = """
CREATE OR REPLACE FUNCTION anima_date_words(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN to_char(ts AT TIME ZONE 'UTC', 'FMDD FMMonth YYYY');
"""


def remove_resonance_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=RESONANCE_SCHEDULE[0]).delete()


def restore_resonance_schedule(apps, schema_editor):
    name, func = RESONANCE_SCHEDULE
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=name,
        defaults={
            "func": func,
            "schedule_type": "I",
            "minutes": 5,
            "repeats": -1,
            "next_run": django.utils.timezone.now(),
        },
    )


class Migration(migrations.Migration):

    dependencies = [
        ("memories", "0008_resonant_embeddings"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunPython(remove_resonance_schedule, restore_resonance_schedule),
        migrations.RunSQL(DROP_RESONANCE_TRIGGER, RESTORE_RESONANCE_TRIGGER),
        migrations.RemoveIndex(model_name="memory", name="memory_resonance_lag"),
        migrations.RemoveIndex(model_name="memoryembedding", name="embedding_hnsw_resonant"),
        migrations.RemoveField(model_name="memory", name="resonance_indexed"),
        migrations.RemoveField(model_name="memoryembedding", name="resonant"),
        # Event time: the existing rows happened when they were stored.
        migrations.AddField(model_name="memory", name="occurred_at", field=models.DateTimeField(null=True)),
        migrations.RunSQL(
            "UPDATE memories_memory SET occurred_at = created_at WHERE occurred_at IS NULL", migrations.RunSQL.noop
        ),
        migrations.AlterField(
            model_name="memory",
            name="occurred_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddIndex(
            model_name="memory",
            index=models.Index(
                condition=models.Q(("deleted_at__isnull", True)),
                fields=["namespace", "occurred_at"],
                name="memory_live_occurred",
            ),
        ),
        # The full-text column with the date's words: a generated column cannot be
        # altered, so it is dropped (with its GIN index) and added again.
        migrations.RunSQL(DATE_WORDS, "DROP FUNCTION IF EXISTS anima_date_words(timestamptz)"),
        migrations.RemoveIndex(model_name="memory", name="memory_search_gin"),
        migrations.RemoveField(model_name="memory", name="search_vector"),
        migrations.AddField(
            model_name="memory",
            name="search_vector",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.SearchVector(
                    "content", memories.models.DateWords("occurred_at"), config="english"
                ),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddIndex(
            model_name="memory",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search_vector"], name="memory_search_gin"),
        ),
    ]
