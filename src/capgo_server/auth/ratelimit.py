"""In-process fixed-window rate limiters.

Each worker process keeps its own counters, so with N workers a limit is at most N times looser;
that is the price of needing no shared service. Limits are settings (``CAPGO_RATE_LIMIT_*``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

#: The most keys a limiter tracks. Past it, the windows that started first are forgotten (their
#: keys start afresh): memory stays bounded under a flood of distinct keys (device ids, IPs),
#: at the price of letting the oldest of them count from zero again.
MAX_TRACKED = 100_000


@dataclass
class FixedWindowLimiter:
    """Allows ``limit`` hits per ``window_seconds`` for each key; a key's window starts at its
    first hit (a blocked client waits the whole window).

    The windows are kept in the order they started (a key whose window restarts moves to the
    end), so the expired ones are always at the front: each new window drops them there, and no
    hit ever scans the table.
    """

    limit: int
    window_seconds: float
    max_tracked: int = MAX_TRACKED
    _windows: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)

    def _current(self, key: str, now: float) -> tuple[float, int] | None:
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.window_seconds:
            return None
        return window

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait if ``key`` is over its limit now, else ``None`` (does not count)."""
        now = time.monotonic()
        window = self._current(key, now)
        if window is None or window[1] < self.limit:
            return None
        return max(1, math.ceil(window[0] + self.window_seconds - now))

    def hit(self, key: str) -> int | None:
        """Count one hit; return seconds to wait if this hit is over the limit."""
        now = time.monotonic()
        window = self._current(key, now)
        if window is None:
            self._windows.pop(key, None)
            self._forget_old(now)
            start, count = now, 1
        else:
            start, count = window[0], window[1] + 1
        self._windows[key] = (start, count)
        if count > self.limit:
            return max(1, math.ceil(start + self.window_seconds - now))
        return None

    def _forget_old(self, now: float) -> None:
        """Drop the expired windows, and the oldest ones past :attr:`max_tracked` (making room
        for one more)."""
        windows = self._windows
        while windows:
            key, (start, _) = next(iter(windows.items()))
            if now - start < self.window_seconds and len(windows) < self.max_tracked:
                return
            del windows[key]


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
