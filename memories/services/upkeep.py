"""Scheduled upkeep: φ decay and the access-log clean-up (django-q2 ``Schedule`` rows)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from memories.models import LIVE, Memory, MemoryAccess

DECAY_IDLE_DAYS = 30
DECAY_MIN_PHI = 0.5
DECAY_FACTOR = 0.95


def memories_apply_decay(*, now=None) -> int:
    """φ × 0.95 for memories idle ≥ 30 days with φ > 0.5, not pinned, not decayed in 30 days.

    ``phi_decayed_at`` makes it idempotent: a re-run or a retried task on the same day
    decays nobody twice. One UPDATE; returns the number of memories decayed.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=DECAY_IDLE_DAYS)
    return (
        Memory.objects.filter(LIVE, pinned=False, last_accessed__lte=cutoff, resonance_phi__gt=DECAY_MIN_PHI)
        .filter(Q(phi_decayed_at__isnull=True) | Q(phi_decayed_at__lte=cutoff))
        .update(resonance_phi=F("resonance_phi") * DECAY_FACTOR, phi_decayed_at=now)
    )


def access_log_clean(*, now=None) -> int:
    """Delete access rows older than the retention."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.ANIMA_ACCESS_LOG_RETENTION_HOURS)
    deleted, _ = MemoryAccess.objects.filter(accessed_at__lt=cutoff).delete()
    return deleted
