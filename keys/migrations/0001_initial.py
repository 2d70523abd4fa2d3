"""ApiKey moves from meta to keys: its table (``meta_apikey``) and rows stay as they are.

Only the migration state changes (the table was made by ``meta.0003_api_keys``; meta's
``0006`` drops the model from meta's state). Its content type is renamed too, so that
staff permissions and admin log entries keep pointing at it.
"""

import django.utils.timezone
from django.db import migrations, models

MOVED = ["apikey"]


def content_types_to_keys(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="keys", model=model).exists():
            ContentType.objects.filter(app_label="meta", model=model).update(app_label="keys")


def content_types_to_meta(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="meta", model=model).exists():
            ContentType.objects.filter(app_label="keys", model=model).update(app_label="meta")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("meta", "0005_handshake_quoted_ids"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=100)),
                        ("prefix", models.CharField(max_length=16, unique=True)),
                        ("salt", models.CharField(max_length=32)),
                        ("secret_hash", models.CharField(max_length=64)),
                        ("namespace", models.SlugField(max_length=64)),
                        (
                            "scope",
                            models.CharField(
                                choices=[("read", "Read"), ("write", "Write"), ("admin", "Admin")],
                                default="write",
                                max_length=8,
                            ),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={"db_table": "meta_apikey"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_keys, content_types_to_meta),
    ]
