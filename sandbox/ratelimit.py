"""Token-bucket rate limiting per caller (per token or API key), on the wall clock."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from sandbox.clock import Clock


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`rate` requests per second sustained, `burst` at once. `take` answers the seconds to
    wait (0 when the request may go ahead)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, caller: str, rate: float, burst: int) -> float:
        now = self._clock.now().timestamp()
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(tokens=float(burst), at=now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate

    def remaining(self, caller: str) -> int:
        """Whole requests left in the caller's bucket (sent as `X-RateLimit-Remaining`)."""
        with self._lock:
            bucket = self._buckets.get(caller)
            return int(bucket.tokens) if bucket is not None else 0


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After takes whole seconds; round up so a client that obeys it gets through."""
    return str(max(1, math.ceil(wait_seconds)))
