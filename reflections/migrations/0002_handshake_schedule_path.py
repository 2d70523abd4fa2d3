"""The daily schedule that deletes expired handshakes (made by ``meta.0002``) names the
task's new home, ``reflections.tasks``."""

from django.db import migrations

NAME = "anima: expired handshakes"
OLD_FUNC = "meta.tasks.delete_expired_handshakes"
NEW_FUNC = "reflections.tasks.delete_expired_handshakes"


def to_reflections(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME, func=OLD_FUNC).update(func=NEW_FUNC)


def to_meta(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME, func=NEW_FUNC).update(func=OLD_FUNC)


class Migration(migrations.Migration):

    dependencies = [
        ("reflections", "0001_initial"),
        ("meta", "0002_handshake_schedule"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(to_reflections, to_meta)]
