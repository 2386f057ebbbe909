"""In-process fixed-window rate limiters.

Each worker process keeps its own counters, so with N workers a limit is at most N times looser;
that is the price of needing no shared service. Limits are settings (``CAPGO_RATE_LIMIT_*``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

# Bounds memory under a flood of distinct keys (e.g. spoofed-looking IPs): old windows are
# swept once the table grows past this many entries.
_MAX_TRACKED = 100_000


@dataclass
class FixedWindowLimiter:
    """Allows ``limit`` hits per ``window_seconds`` for each key."""

    limit: int
    window_seconds: float
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def _current(self, key: str, now: float) -> tuple[float, int]:
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.window_seconds:
            return now, 0
        return start, count

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait if ``key`` is over its limit now, else ``None`` (does not count)."""
        now = time.monotonic()
        start, count = self._current(key, now)
        if count < self.limit:
            return None
        return max(1, math.ceil(start + self.window_seconds - now))

    def hit(self, key: str) -> int | None:
        """Count one hit; return seconds to wait if this hit is over the limit."""
        now = time.monotonic()
        start, count = self._current(key, now)
        if len(self._windows) > _MAX_TRACKED:
            self._sweep(now)
        self._windows[key] = (start, count + 1)
        if count + 1 > self.limit:
            return max(1, math.ceil(start + self.window_seconds - now))
        return None

    def _sweep(self, now: float) -> None:
        expired = [k for k, (s, _) in self._windows.items() if now - s >= self.window_seconds]
        for k in expired:
            del self._windows[k]


@dataclass
class RateLimiters:
    failed_auth_per_ip: FixedWindowLimiter
    requests_per_key: FixedWindowLimiter
    #: Device endpoints (``capgo_server.plugin.limits``): per (app, device, endpoint) ...
    device_requests: FixedWindowLimiter
    #: ... and per client IP across all device endpoints, so rotating device ids does not help.
    device_requests_per_ip: FixedWindowLimiter
    #: ``POST /channel_self`` for the same (app, device, channel): once per window.
    channel_self_same_channel: FixedWindowLimiter
