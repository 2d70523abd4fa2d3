"""What the operations layer records about the service itself: task-cluster restarts."""

from django.db import models
from django.utils import timezone


class ClusterRestart(models.Model):
    """A task cluster ``manage.py serve`` restarted because it made no progress (audit and metric)."""

    restarted_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300)
