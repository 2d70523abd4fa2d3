"""The daily purge of memories soft-deleted longer ago than the retention (a Schedule row)."""

from django.db import migrations
from django.utils import timezone

NAME = "anima: purge expired deletions"


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={
            "func": "memories.tasks.purge_expired_deletions",
            "schedule_type": "D",
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("memories", "0006_metadata_gin_and_pinned")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
