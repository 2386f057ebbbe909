"""A fixed-size table of per-key slots, for the worker's per-device memory.

The rate limiters (:mod:`capgo_server.auth.ratelimit`) and the recorder's device-day memo
(:class:`capgo_server.plugin.recording.ActivityMemo`) keep something for every device that calls,
and devices are many and client-named. Both therefore hold their entries here: arrays allocated
once, when the table is made, so a worker's memory does not grow with the number of devices it
has seen, and a flood of made-up ids costs nothing but forgetting.

A key is not stored, only its 64-bit ``hash()``: Python's string hashing is keyed per process, so
a client cannot choose ids that collide, and two keys sharing all 64 bits is too rare to matter
(they would share one entry). Each key may live in one bucket of :data:`WAYS` slots; when a new
key finds its bucket full, the slot with the smallest *age* (a number the owner sets: a window's
start, a day) is given to it, so the oldest entries are the ones forgotten.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable

#: Slots per bucket: a key competes with the keys of its bucket only.
WAYS = 4
#: The tag of a slot that was never used (a key hashing to 0 is tagged 1 instead).
_EMPTY = 0


class HashSlots:
    """``slots`` entries (rounded up to a power of two), each a key's tag and :attr:`ages` value.

    Memory: 16 bytes a slot (2 MiB for 131,072), all of it allocated here.
    """

    def __init__(self, slots: int) -> None:
        buckets = 1 << max(0, math.ceil(math.log2(max(slots, WAYS) / WAYS)))
        self._bucket_mask = buckets - 1
        self._tags = array("q", [_EMPTY]) * (buckets * WAYS)
        #: The owner's number for each slot; the smallest in a full bucket is replaced first.
        #: A slot handed to a new key keeps the age of the key it replaced until the owner
        #: sets it. Unused slots are ``-inf``.
        self.ages = array("d", [-math.inf]) * (buckets * WAYS)

    def __len__(self) -> int:
        return len(self._tags)

    @staticmethod
    def tag(key: Hashable) -> int:
        """``key``'s tag: compute it once and pass it to :meth:`find` and :meth:`claim`."""
        return hash(key) or 1

    def find(self, tag: int) -> int | None:
        """The slot of ``tag``, if it has one."""
        first = (tag & self._bucket_mask) * WAYS
        tags = self._tags
        for slot in range(first, first + WAYS):
            if tags[slot] == tag:
                return slot
        return None

    def claim(self, tag: int) -> tuple[int, bool]:
        """The slot of ``tag``, and whether it is new: if ``tag`` has none, the slot of its
        bucket with the smallest age becomes its (that key is forgotten)."""
        first = (tag & self._bucket_mask) * WAYS
        tags, ages = self._tags, self.ages
        oldest = first
        for slot in range(first, first + WAYS):
            if tags[slot] == tag:
                return slot, False
            if ages[slot] < ages[oldest]:
                oldest = slot
        tags[oldest] = tag
        return oldest, True
