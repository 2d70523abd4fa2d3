"""When the client sends a request again, and how long it waits first.

Retried: 503 (the service or its embedder is briefly unavailable — an add answers 503
before writing anything), 429 (after the server's ``Retry-After``), and failures to
reach the server (refused, reset, connect timeout). A read timeout is retried only for
GET and DELETE: a POST may have been applied. Waits grow exponentially from ``backoff``
(0.5 s, 1 s, 2 s, … capped at ``backoff_max``); a ``Retry-After`` is waited for in full
unless it is longer than ``max_retry_after``, in which case the error is raised at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from anima_client.errors import retry_after_seconds

RETRY_STATUSES = frozenset({429, 503})

#: Transport failures where the request cannot have been applied: always safe to resend.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    #: Extra attempts after the first (0 turns retrying off).
    max_retries: int = 3
    #: First wait in seconds; doubled for each further retry.
    backoff: float = 0.5
    backoff_max: float = 8.0
    #: A Retry-After longer than this is not waited for: the error is raised.
    max_retry_after: float = 60.0
    #: Spread the waits (half fixed, half random) so many clients do not retry in step.
    jitter: bool = True

    def backoff_delay(self, retry_no: int) -> float:
        delay = min(self.backoff_max, self.backoff * (2**retry_no))
        if self.jitter:
            delay = delay / 2 + random.uniform(0, delay / 2)
        return delay

    def delay_after_response(self, retry_no: int, response: httpx.Response) -> float | None:
        """Seconds to wait before resending, or None when ``response`` stands."""
        if response.status_code not in RETRY_STATUSES or retry_no >= self.max_retries:
            return None
        retry_after = retry_after_seconds(response)
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        return max(retry_after or 0.0, self.backoff_delay(retry_no))

    def delay_after_error(self, retry_no: int, error: httpx.TransportError, *, idempotent: bool) -> float | None:
        """Seconds to wait before resending after no answer, or None to give up."""
        if retry_no >= self.max_retries:
            return None
        if isinstance(error, _NOT_SENT) or (idempotent and isinstance(error, httpx.TimeoutException)):
            return self.backoff_delay(retry_no)
        return None


NO_RETRY = RetryPolicy(max_retries=0)
