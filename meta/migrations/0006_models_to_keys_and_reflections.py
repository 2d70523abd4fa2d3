"""ApiKey now belongs to keys, MetaReflection, ConversationReflection and Handshake to
reflections: they leave meta's migration state only. Their tables stay (each model keeps
its ``db_table``) and so do their rows; a fresh database still gets them from
``0001``–``0005``."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("meta", "0005_handshake_quoted_ids"),
        ("keys", "0001_initial"),
        ("reflections", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ApiKey"),
                migrations.DeleteModel(name="ConversationReflection"),
                migrations.DeleteModel(name="Handshake"),
                migrations.DeleteModel(name="MetaReflection"),
            ],
            database_operations=[],
        ),
    ]
