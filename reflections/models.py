"""Reflections on conversations and handshakes (SPEC §2 meta).

The tables keep the names the meta app gave them before this app had its own.
"""

from datetime import timedelta

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

HANDSHAKE_LIFETIME = timedelta(days=7)


class ReflectionType(models.TextChoices):
    CONVERSATION_END = "conversation_end"
    WEEKLY = "weekly"
    MANUAL = "manual"


class MetaReflection(models.Model):
    """The service's own numbers about one conversation (or a manual/weekly look)."""

    namespace = models.SlugField(max_length=64)
    reflection_type = models.CharField(max_length=32, choices=ReflectionType.choices)
    conversation_id = models.CharField(max_length=200, null=True, blank=True)
    session_metrics = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    insights = ArrayField(models.TextField(), default=list)
    recommendations = ArrayField(models.TextField(), default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "meta_metareflection"
        indexes = [
            models.Index(fields=["namespace", "-created_at"], name="metareflection_recent"),
            models.Index(fields=["namespace", "conversation_id"], name="metareflection_conversation"),
        ]


class ConversationReflection(models.Model):
    """The assistant's own, subjective view of one conversation."""

    namespace = models.SlugField(max_length=64)
    conversation_id = models.CharField(max_length=200)
    context_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    continuity_score = models.PositiveSmallIntegerField(null=True, blank=True)
    needed_correction = models.BooleanField(default=False)
    had_emergence_moment = models.BooleanField(default=False)
    surprises = models.TextField(max_length=1000, blank=True, default="")
    friction_notes = models.TextField(max_length=1000, blank=True, default="")
    general_notes = models.TextField(max_length=2000, blank=True, default="")
    reflected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "meta_conversationreflection"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(context_quality__isnull=True) | models.Q(context_quality__range=(1, 10)),
                name="reflection_quality_range",
            ),
            models.CheckConstraint(
                condition=models.Q(continuity_score__isnull=True) | models.Q(continuity_score__range=(1, 10)),
                name="reflection_continuity_range",
            ),
        ]
        indexes = [models.Index(fields=["namespace", "-reflected_at"], name="convreflection_recent")]


def _handshake_expiry():
    return timezone.now() + HANDSHAKE_LIFETIME


class Handshake(models.Model):
    """A first-person continuity text for the next conversation, built by a fixed template."""

    namespace = models.SlugField(max_length=64)
    prompt_text = models.TextField()
    top_memories = models.JSONField(default=list)  # [{id, content, phi}]
    #: Every memory the text quotes (top memories and open threads): a purge or an edit
    #: of one of them deletes this handshake.
    quoted_ids = ArrayField(models.UUIDField(), default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=_handshake_expiry)

    class Meta:
        db_table = "meta_handshake"
        indexes = [models.Index(fields=["namespace", "-created_at"], name="handshake_recent")]
