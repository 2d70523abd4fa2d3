"""Handshakes record every memory they quote, so that a purge or an edit deletes them.

Existing handshakes do not know which open threads they quote: they are deleted (the
next ``GET /meta/handshake`` builds a fresh one)."""

import django.contrib.postgres.fields
from django.db import migrations, models


def forget_handshakes(apps, schema_editor):
    apps.get_model("meta", "Handshake").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("meta", "0004_cluster_restart"),
    ]

    operations = [
        migrations.AddField(
            model_name="handshake",
            name="quoted_ids",
            field=django.contrib.postgres.fields.ArrayField(base_field=models.UUIDField(), default=list, size=None),
        ),
        migrations.RunPython(forget_handshakes, migrations.RunPython.noop),
    ]
