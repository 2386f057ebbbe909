"""In-process fixed-window rate limiters.

Each worker process keeps its own counters, so with N workers a limit is at most N times looser;
that is the price of needing no shared service. Limits are settings (``CAPGO_RATE_LIMIT_*``).
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Hashable
from dataclasses import dataclass

from capgo_server.hash_slots import HashSlots

#: Windows a limiter has room for (rounded up to a power of two). The memory is allocated when
#: the limiter is made (3 MiB) and never grows: under a flood of distinct keys (device
#: ids, IPs) the windows that started first are forgotten, and their keys count from zero again.
MAX_TRACKED = 131_072


class FixedWindowLimiter:
    """Allows ``limit`` hits per ``window_seconds`` for each key; a key's window starts at its
    first hit (a blocked client waits the whole window).

    Windows live in a :class:`~capgo_server.hash_slots.HashSlots` table whose age is the
    window's start: a key without room takes the slot of the window that started first in its
    bucket, expired windows before live ones.
    """

    def __init__(self, limit: int, window_seconds: float, max_tracked: int = MAX_TRACKED) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._slots = HashSlots(max_tracked)
        # Hits in the window, capped at ``limit + 1`` (all a refusal needs to know).
        self._counts = array("q", [0]) * len(self._slots)

    def retry_after(self, key: Hashable) -> int | None:
        """Seconds to wait if ``key`` is over its limit now, else ``None`` (does not count)."""
        slot = self._slots.find(HashSlots.tag(key))
        if slot is None or self._counts[slot] < self.limit:
            return None
        return self._wait(slot, time.monotonic())

    def hit(self, key: Hashable, cost: int = 1) -> int | None:
        """Count ``cost`` hits (one request, or the events of a ``/stats`` batch); return
        seconds to wait if the window was already full before them.

        A request with room for its first hit is let through whole, so a batch larger than
        what is left (or than the limit) still passes in a fresh window, and then fills it: a
        window admits at most ``limit - 1 + cost`` hits.
        """
        now = time.monotonic()
        slot, new = self._slots.claim(HashSlots.tag(key))
        starts = self._slots.ages
        if new or now - starts[slot] >= self.window_seconds:
            starts[slot] = now
            self._counts[slot] = 0
        before = self._counts[slot]
        self._counts[slot] = min(before + max(cost, 1), self.limit + 1)
        if before >= self.limit:
            return self._wait(slot, now)
        return None

    def _wait(self, slot: int, now: float) -> int | None:
        """Seconds until ``slot``'s window ends (at least 1), ``None`` if it has ended."""
        left = self._slots.ages[slot] + self.window_seconds - now
        return max(1, math.ceil(left)) if left > 0 else None


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
