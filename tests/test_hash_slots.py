"""The fixed-size per-key tables behind the rate limiters and the device-day memo: they forget
the oldest entries instead of growing (``capgo_server.hash_slots``)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Hashable
from datetime import date, timedelta
from typing import TypeVar

from capgo_server.auth.ratelimit import FixedWindowLimiter
from capgo_server.hash_slots import WAYS, HashSlots
from capgo_server.plugin.recording import ActivityMemo
from tests.conftest import MonotonicClock

K = TypeVar("K", bound=Hashable)


#: What a flood may leave allocated: CPython keeps freed tuples and floats on free lists. A table
#: that kept the 50,000 keys would hold megabytes.
FREE_LISTS = 256 * 1024


def same_bucket(
    table: HashSlots, count: int, key: Callable[[int], K], bucket_of: int | None = None
) -> list[K]:
    """``count`` of the keys ``key(0)``, ``key(1)``, ... whose tags fall in one bucket of
    ``table``: the bucket of tag ``bucket_of``, else of ``key(0)``."""
    first = HashSlots.tag(key(0)) if bucket_of is None else bucket_of
    mask = len(table) // WAYS - 1
    keys = (key(n) for n in range(1_000_000))
    return [k for k in keys if (HashSlots.tag(k) ^ first) & mask == 0][:count]


def same_bucket_keys(table: HashSlots, count: int) -> list[str]:
    return same_bucket(table, count, lambda n: f"key-{n}")


class TestHashSlots:
    def test_size_is_rounded_up_to_whole_buckets(self) -> None:
        assert len(HashSlots(1)) == WAYS
        assert len(HashSlots(100)) == 128
        assert len(HashSlots(131_072)) == 131_072

    def test_a_claimed_key_is_found_again_and_others_are_not(self) -> None:
        table = HashSlots(64)
        slot, new = table.claim(HashSlots.tag("a"))
        assert new
        assert table.find(HashSlots.tag("a")) == slot
        assert table.claim(HashSlots.tag("a")) == (slot, False)
        assert table.find(HashSlots.tag("b")) is None

    def test_a_full_bucket_gives_up_its_smallest_age(self) -> None:
        table = HashSlots(64)
        keys = same_bucket_keys(table, WAYS + 1)
        for age, key in enumerate(keys[:WAYS]):
            slot, _ = table.claim(HashSlots.tag(key))
            table.ages[slot] = [30, 10, 40, 20][age]
        slot, new = table.claim(HashSlots.tag(keys[WAYS]))
        assert new
        assert table.find(HashSlots.tag(keys[1])) is None  # age 10: forgotten
        assert table.find(HashSlots.tag(keys[WAYS])) == slot
        assert all(table.find(HashSlots.tag(k)) is not None for k in (keys[0], keys[2], keys[3]))


class TestLimiterMemory:
    def test_a_flood_of_distinct_keys_allocates_nothing(
        self, limiter_clock: MonotonicClock
    ) -> None:
        limiter = FixedWindowLimiter(limit=5, window_seconds=60, max_tracked=4096)
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for n in range(50_000):
                limiter.hit(f"device-{n}")
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert after - before < FREE_LISTS

    def test_a_flood_forgets_the_oldest_windows_and_keeps_the_newest(
        self, limiter_clock: MonotonicClock
    ) -> None:
        limiter = FixedWindowLimiter(limit=1, window_seconds=60, max_tracked=64)
        limiter.hit("old")
        assert limiter.hit("old") == 60
        for n in range(10_000):
            limiter_clock.now += 0.001
            limiter.hit(f"device-{n}")
        assert limiter.retry_after("old") is None  # forgotten: counts from zero again
        assert limiter.hit("old") is None
        assert limiter.retry_after("device-9999") == 60

    def test_expired_windows_make_room_before_live_ones(
        self, limiter_clock: MonotonicClock
    ) -> None:
        limiter = FixedWindowLimiter(limit=1, window_seconds=60, max_tracked=WAYS)
        keys = same_bucket_keys(HashSlots(WAYS), WAYS + 1)
        for key in keys[:2]:
            limiter.hit(key)
        limiter_clock.now += 61  # keys[0] and keys[1] have expired
        for key in keys[2:4]:
            limiter.hit(key)
        limiter.hit(keys[4])
        assert limiter.hit(keys[2]) is not None  # still blocked: its window is live
        assert limiter.hit(keys[3]) is not None

    def test_counts_stay_bounded_however_often_a_key_hits(
        self, limiter_clock: MonotonicClock
    ) -> None:
        limiter = FixedWindowLimiter(limit=2, window_seconds=60, max_tracked=8)
        for _ in range(10_000):
            assert limiter.hit("noisy") in (None, 60)
        assert limiter.retry_after("noisy") == 60
        limiter_clock.now += 60
        assert limiter.hit("noisy") is None


class TestActivityMemo:
    def test_remembers_the_device_days_it_was_given(self) -> None:
        memo = ActivityMemo(slots=64)
        today = date(2026, 11, 30)
        memo.add({today: [("com.a", "d1"), ("com.b", "d2")]})
        assert memo.has(today, "com.a", "d1")
        assert memo.has(today, "com.b", "d2")
        assert not memo.has(today, "com.a", "d2")
        assert not memo.has(today - timedelta(days=1), "com.a", "d1")

    def test_older_days_are_forgotten_first(self) -> None:
        memo = ActivityMemo(slots=256)
        table = HashSlots(256)  # the memo's shape, to pick keys that compete for one bucket
        today = date(2026, 11, 30)
        yesterday = today - timedelta(days=1)
        old = same_bucket(table, WAYS, lambda n: (yesterday, "com.a", f"old-{n}"))
        bucket_of = HashSlots.tag(old[0])
        new = same_bucket(table, WAYS, lambda n: (today, "com.a", f"new-{n}"), bucket_of)
        memo.add({yesterday: [(app, device) for _, app, device in old]})
        memo.add({today: [(app, device) for _, app, device in new[:1]]})
        assert memo.has(*new[0])
        assert sum(memo.has(*key) for key in old) == WAYS - 1
        memo.add({today: [(app, device) for _, app, device in new[1:]]})
        assert all(memo.has(*key) for key in new)
        assert not any(memo.has(*key) for key in old)

    def test_a_flood_of_device_days_allocates_nothing(self) -> None:
        memo = ActivityMemo(slots=4096)
        today = date(2026, 11, 30)
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for n in range(0, 50_000, 1000):
                memo.add({today: [("com.a", f"device-{m}") for m in range(n, n + 1000)]})
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert after - before < FREE_LISTS
