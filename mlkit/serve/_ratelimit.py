"""Per-key rate limits for the gateway: one token bucket per API key, in the gateway's memory.

A bucket holds ``limit`` tokens and refills at ``limit / period`` tokens per second; a request
takes one. When it is empty the gateway answers 429 with ``Retry-After`` = the whole seconds
until a token is back. A bucket (rather than fixed windows) lets a client use its allowance
in bursts without doubling it at window edges. Ten lines of arithmetic, so no dependency.

Examples
--------
>>> rl = RateLimiter()
>>> [rl.hit("k", (2, 60.0), now=0.0) for _ in range(3)]
[0.0, 0.0, 30.0]
"""

from __future__ import annotations

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets keyed by API key id."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    def hit(self, key: str, rate: tuple[int, float], now: float) -> float:
        """Take a token: 0.0 if allowed, else the seconds until one is available."""
        limit, period = rate
        refill = limit / period
        tokens, last = self._buckets.get(key, (float(limit), now))
        tokens = min(float(limit), tokens + (now - last) * refill)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / refill
