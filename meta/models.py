"""What the service records about its own use: reflections and handshakes (SPEC §2 meta)."""

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
        indexes = [models.Index(fields=["namespace", "-created_at"], name="handshake_recent")]


class Scope(models.TextChoices):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


#: Each scope includes the ones before it: write can read, admin can write and read.
SCOPE_RANK = {Scope.READ: 1, Scope.WRITE: 2, Scope.ADMIN: 3}


class ApiKey(models.Model):
    """An API key: a public prefix to find it and a salted SHA-256 of its secret.

    The secret is shown once, when the key is made, and never stored. The secret has
    256 bits of entropy, so one salted SHA-256 is enough (a slow password hash would cost
    every request tens of milliseconds for nothing). A key acts in one namespace; the
    ``admin`` scope may act in another with ``X-Anima-Namespace``.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    salt = models.CharField(max_length=32)
    secret_hash = models.CharField(max_length=64)
    namespace = models.SlugField(max_length=64)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.WRITE)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.namespace}, {self.scope})"

    def allows(self, scope: str) -> bool:
        return SCOPE_RANK[self.scope] >= SCOPE_RANK[scope]


class ClusterRestart(models.Model):
    """A task cluster ``manage.py serve`` restarted because it made no progress (audit and metric)."""

    restarted_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300)
