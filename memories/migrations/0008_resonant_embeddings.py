"""A second, small HNSW graph over the vectors of resonant memories (φ ≥ 1).

A query ranks by 0.7·similarity + 0.3·φ/5, so a memory with a high φ can belong in the
top 20 while lying outside the pool of nearest neighbours. Those memories are looked up
in this graph by similarity instead of reading every high-φ row (a cost that grew with
the namespace).

``memories_memoryembedding.resonant`` (the graph's predicate) and
``memories_memory.resonance_indexed`` are one flag kept on both sides. Requests never
touch the embedding table (SPEC §3); the background resonance sync moves the flag when φ
has crossed 1, and until then the query reads the lagging memories exactly through
``memory_resonance_lag``. An embedding row inserted later copies its memory's flag (the
trigger), so the two sides never disagree. A schedule runs the sync every 5 minutes for
writers of φ that do not ask for it.
"""

import pgvector.django.indexes
from django.db import migrations, models
from django.utils import timezone

SCHEDULE = ("anima: resonance sync", "memories.tasks.sync_resonance")

FORWARD = """
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

BACKWARD = """
DROP TRIGGER IF EXISTS embedding_resonance_init ON memories_memoryembedding;
-- CASCADE: the same trigger on an unfinished reembed's shadow table goes too.
DROP FUNCTION IF EXISTS anima_embedding_resonance_init() CASCADE;
"""


def create_schedule(apps, schema_editor):
    name, func = SCHEDULE
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=name,
        defaults={"func": func, "schedule_type": "I", "minutes": 5, "repeats": -1, "next_run": timezone.now()},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE[0]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("memories", "0007_purge_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="memory",
            name="resonance_indexed",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.AddField(
            model_name="memoryembedding",
            name="resonant",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AddIndex(
            model_name="memory",
            index=models.Index(
                condition=models.Q(
                    models.Q(("resonance_phi__gte", 1.0), ("resonance_indexed", False)),
                    models.Q(("resonance_phi__lt", 1.0), ("resonance_indexed", True)),
                    _connector="OR",
                ),
                fields=["namespace", "-resonance_phi"],
                name="memory_resonance_lag",
            ),
        ),
        migrations.AddIndex(
            model_name="memoryembedding",
            index=pgvector.django.indexes.HnswIndex(
                condition=models.Q(("resonant", True)),
                ef_construction=64,
                fields=["embedding"],
                m=16,
                name="embedding_hnsw_resonant",
                opclasses=["vector_cosine_ops"],
            ),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
