"""Restarts of a stalled task cluster by `manage.py serve` (audit rows; the metric counts them)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('meta', '0003_api_keys'),
    ]

    operations = [
        migrations.CreateModel(
            name='ClusterRestart',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('restarted_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('reason', models.CharField(max_length=300)),
            ],
        ),
    ]
