"""Facts that change: supersession links, validity interval, expiry. A memory stored
before this migration has been valid since it was stored (``valid_from = created_at``)."""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('memories', '0011_cache_generation'),
    ]

    operations = [
        migrations.AddField(
            model_name='memory',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='memory',
            name='superseded_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='superseded_memories', to='memories.memory'),
        ),
        migrations.AddField(
            model_name='memory',
            name='supersedes',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.UUIDField(), blank=True, default=list, size=None),
        ),
        migrations.AddField(
            model_name='memory',
            name='valid_from',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name='memory',
            name='valid_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.CheckConstraint(condition=models.Q(('superseded_by', models.F('id')), _negated=True), name='memory_not_self_superseded'),
        ),
        migrations.AddConstraint(
            model_name='memory',
            constraint=models.CheckConstraint(condition=models.Q(('superseded_by__isnull', True), ('valid_until__isnull', False), _connector='OR'), name='memory_superseded_until'),
        ),
        migrations.RunSQL(
            "UPDATE memories_memory SET valid_from = created_at", reverse_sql=migrations.RunSQL.noop, elidable=True
        ),
    ]
