"""The namespace cache generation: every purge replaces it, so cached embeddings of the
namespace become unreachable in every process (memories/embeddings/__init__.py)."""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('memories', '0010_background_work'),
    ]

    operations = [
        migrations.CreateModel(
            name='CacheGeneration',
            fields=[
                ('namespace', models.SlugField(max_length=64, primary_key=True, serialize=False)),
                ('token', models.UUIDField(default=uuid.uuid4)),
            ],
        ),
    ]
