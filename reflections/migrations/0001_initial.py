"""MetaReflection, ConversationReflection and Handshake move from meta to reflections.

Their tables (``meta_metareflection``, ``meta_conversationreflection``,
``meta_handshake``) and rows stay as they are: only the migration state changes (meta's
``0001``–``0005`` made the tables; meta's ``0006`` drops the models from meta's state).
Their content types are renamed too, so that staff permissions and admin log entries
keep pointing at them.
"""

import django.contrib.postgres.fields
import django.utils.timezone
from django.db import migrations, models

import reflections.models

MOVED = ["metareflection", "conversationreflection", "handshake"]


def content_types_to_reflections(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="reflections", model=model).exists():
            ContentType.objects.filter(app_label="meta", model=model).update(app_label="reflections")


def content_types_to_meta(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="meta", model=model).exists():
            ContentType.objects.filter(app_label="reflections", model=model).update(app_label="meta")


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
                    name="ConversationReflection",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("namespace", models.SlugField(max_length=64)),
                        ("conversation_id", models.CharField(max_length=200)),
                        ("context_quality", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("continuity_score", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("needed_correction", models.BooleanField(default=False)),
                        ("had_emergence_moment", models.BooleanField(default=False)),
                        ("surprises", models.TextField(blank=True, default="", max_length=1000)),
                        ("friction_notes", models.TextField(blank=True, default="", max_length=1000)),
                        ("general_notes", models.TextField(blank=True, default="", max_length=2000)),
                        ("reflected_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "meta_conversationreflection",
                        "indexes": [models.Index(fields=["namespace", "-reflected_at"], name="convreflection_recent")],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("context_quality__isnull", True), ("context_quality__range", (1, 10)), _connector="OR"),
                                name="reflection_quality_range",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("continuity_score__isnull", True), ("continuity_score__range", (1, 10)), _connector="OR"),
                                name="reflection_continuity_range",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Handshake",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("namespace", models.SlugField(max_length=64)),
                        ("prompt_text", models.TextField()),
                        ("top_memories", models.JSONField(default=list)),
                        (
                            "quoted_ids",
                            django.contrib.postgres.fields.ArrayField(base_field=models.UUIDField(), default=list, size=None),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("expires_at", models.DateTimeField(default=reflections.models._handshake_expiry)),
                    ],
                    options={
                        "db_table": "meta_handshake",
                        "indexes": [models.Index(fields=["namespace", "-created_at"], name="handshake_recent")],
                    },
                ),
                migrations.CreateModel(
                    name="MetaReflection",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("namespace", models.SlugField(max_length=64)),
                        (
                            "reflection_type",
                            models.CharField(
                                choices=[("conversation_end", "Conversation End"), ("weekly", "Weekly"), ("manual", "Manual")],
                                max_length=32,
                            ),
                        ),
                        ("conversation_id", models.CharField(blank=True, max_length=200, null=True)),
                        ("session_metrics", models.JSONField(default=dict)),
                        ("metrics", models.JSONField(default=dict)),
                        (
                            "insights",
                            django.contrib.postgres.fields.ArrayField(base_field=models.TextField(), default=list, size=None),
                        ),
                        (
                            "recommendations",
                            django.contrib.postgres.fields.ArrayField(base_field=models.TextField(), default=list, size=None),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "meta_metareflection",
                        "indexes": [
                            models.Index(fields=["namespace", "-created_at"], name="metareflection_recent"),
                            models.Index(fields=["namespace", "conversation_id"], name="metareflection_conversation"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_reflections, content_types_to_meta),
    ]
