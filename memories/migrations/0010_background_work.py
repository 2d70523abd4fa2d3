"""Background work as durable rows (SPEC §5, revised 2026-12).

``BackgroundWork`` holds what requests leave for the background; ``BackgroundDrain`` one
row per kind, created on first use (the coalescing mark and the drains' progress); the co-occurrence batch
keys (``AppliedBatch``) go: a batch is now applied and deleted in one transaction, so a
retried drain cannot count it twice. A schedule asks every minute for the drains of
kinds with work waiting, so a lost drain request never strands work.
"""

import django.contrib.postgres.fields
import django.db.models.functions.datetime
from django.db import migrations, models
from django.utils import timezone

KINDS = [("cooccurrence", "Cooccurrence"), ("consolidation", "Consolidation"), ("catalyst", "Catalyst")]
SCHEDULE = ("anima: background drains", "memories.tasks.request_drains")


def create_schedule(apps, schema_editor):
    name, func = SCHEDULE
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=name,
        defaults={"func": func, "schedule_type": "I", "minutes": 1, "repeats": -1, "next_run": timezone.now()},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0009_relevance_first_event_time"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.CreateModel(
            name="BackgroundDrain",
            fields=[
                ("kind", models.CharField(choices=KINDS, max_length=16, primary_key=True, serialize=False)),
                ("queued_at", models.DateTimeField(blank=True, null=True)),
                ("progressed_at", models.DateTimeField(blank=True, null=True)),
                ("processed", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="BackgroundWork",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("kind", models.CharField(choices=KINDS, max_length=16)),
                ("namespace", models.SlugField(max_length=64)),
                ("memory_ids", django.contrib.postgres.fields.ArrayField(base_field=models.UUIDField(), size=None)),
                ("conversation_id", models.CharField(blank=True, max_length=200, null=True)),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={"verbose_name_plural": "background work"},
        ),
        migrations.AddIndex(
            model_name="backgroundwork",
            index=models.Index(fields=["kind", "id"], name="work_kind_order"),
        ),
        migrations.DeleteModel(name="AppliedBatch"),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
