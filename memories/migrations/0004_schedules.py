"""The scheduled upkeep as django-q2 ``Schedule`` rows (SPEC §5): φ decay daily, the
access-log clean-up hourly. Idempotent: rows are matched by name."""

from django.db import migrations
from django.utils import timezone

SCHEDULES = [
    ("anima: φ decay", "memories.tasks.apply_decay", "D"),
    ("anima: access-log clean-up", "memories.tasks.clean_access_log", "H"),
]


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, schedule_type in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": schedule_type, "repeats": -1, "next_run": timezone.now()},
        )


def remove_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=[name for name, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0003_applied_batch"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
