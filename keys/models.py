"""API keys and their scopes."""

from django.db import models
from django.utils import timezone


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

    class Meta:
        db_table = "meta_apikey"  # made by the meta app before keys had its own

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.namespace}, {self.scope})"

    def allows(self, scope: str) -> bool:
        return SCOPE_RANK[self.scope] >= SCOPE_RANK[scope]
