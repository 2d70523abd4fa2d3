"""Scheduled upkeep: φ decay and the access-log clean-up (django-q2 ``Schedule`` rows)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from memories.models import LIVE, Memory, MemoryAccess
from memories.ranking import PHI_DECAY_FACTOR, PHI_DECAY_IDLE_DAYS, PHI_DECAY_MIN


def memories_apply_decay(*, now=None) -> int:
    """φ × ``PHI_DECAY_FACTOR`` (0.95) for memories idle ≥ ``PHI_DECAY_IDLE_DAYS`` (30) with
    φ > ``PHI_DECAY_MIN`` (0.5), not pinned, not decayed in as many days (``memories.ranking``).

    ``phi_decayed_at`` makes it idempotent: a re-run or a retried task on the same day
    decays nobody twice. One UPDATE; returns the number of memories decayed.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=PHI_DECAY_IDLE_DAYS)
    return (
        Memory.objects.filter(LIVE, pinned=False, last_accessed__lte=cutoff, resonance_phi__gt=PHI_DECAY_MIN)
        .filter(Q(phi_decayed_at__isnull=True) | Q(phi_decayed_at__lte=cutoff))
        .update(resonance_phi=F("resonance_phi") * PHI_DECAY_FACTOR, phi_decayed_at=now)
    )


def access_log_clean(*, now=None) -> int:
    """Delete access rows older than the retention."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.ANIMA_ACCESS_LOG_RETENTION_HOURS)
    deleted, _ = MemoryAccess.objects.filter(accessed_at__lt=cutoff).delete()
    return deleted
