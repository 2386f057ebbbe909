"""The daily measures of ``GET /statistics/app/:app_id``, from real device traffic, uploads and
downloads replayed over simulated days: every number checked exactly."""

from __future__ import annotations

import random
from datetime import date, timedelta

import httpx

from tests.conftest import Account
from tests.statistics.support import (
    APP_ID,
    DEVICE_A,
    DEVICE_B,
    DEVICE_C,
    check_for_update,
    column,
    create_app,
    download,
    july,
    june,
    on,
    point_date,
    points,
    report,
    set_channel,
    upload,
)


async def _app_with_bundle(
    client: httpx.AsyncClient, owner: Account, *, offered: bool = True
) -> int:
    """The app with bundle ``1.1.0`` uploaded on June 1st and, when ``offered``, served by its
    public channel; the bundle's size."""
    await create_app(client, owner)
    with on(june(1)):
        size = await upload(client, owner, "1.1.0")
    if offered:
        await set_channel(client, owner, "1.1.0")
    return size


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class TestMonthlyActiveUsers:
    async def test_each_device_counts_once_for_30_days_after_each_active_day(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await _app_with_bundle(client, alice)
        with on(june(1)):
            for _ in range(3):  # however often a device calls, it is one device
                await check_for_update(client, DEVICE_A)
            await check_for_update(client, DEVICE_B)
        with on(june(2)):
            await check_for_update(client, DEVICE_A)
            await report(client, DEVICE_C, "set", "1.1.0")  # /stats counts as activity too
        with on(july(10)):
            await check_for_update(client, DEVICE_B)

        with on(july(15)):
            body = await points(client, f"/app/{APP_ID}", alice, june(1), july(31))

        days = _days(june(1), july(15))  # the days after today are left out
        assert [point["date"] for point in body] == [point_date(day) for day in days]
        # A: June 1-2 → until July 1; B: June 1 → June 30, then July 10 →; C: June 2 → July 1.
        expected = {june(1): 2, july(1): 2}
        expected.update({june(n): 3 for n in range(2, 31)})
        expected.update({july(n): 0 for n in range(2, 10)})
        expected.update({july(n): 1 for n in range(10, 16)})
        assert column(body, "mau") == [expected[day] for day in days]

    async def test_days_recorded_out_of_order_give_the_same_windows(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        """Each device's active days arrive shuffled (the clock jumps back and forth); MAU
        still equals a brute-force count of distinct devices active in each 30-day window."""
        await _app_with_bundle(client, alice)
        shuffle = random.Random(20261130)
        active: dict[str, set[date]] = {
            device: {june(1) + timedelta(days=shuffle.randrange(90)) for _ in range(6)}
            for device in (DEVICE_A, DEVICE_B, DEVICE_C)
        }
        visits = [(day, device) for device, days in active.items() for day in days]
        shuffle.shuffle(visits)
        for day, device in visits:
            with on(day):
                await check_for_update(client, device)

        last = june(1) + timedelta(days=130)
        with on(last):
            body = await points(client, f"/app/{APP_ID}", alice, june(1), last)

        def brute_force(day: date) -> int:
            window = {day - timedelta(days=n) for n in range(30)}
            return sum(1 for days in active.values() if days & window)

        assert column(body, "mau") == [brute_force(day) for day in _days(june(1), last)]
        assert max(column(body, "mau")) == 3


class TestStorage:
    async def test_bytes_of_live_bundles_at_the_end_of_each_day(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        first_size = await _app_with_bundle(client, alice, offered=False)
        with on(june(3)):
            second_size = await upload(client, alice, "1.2.0")
        with on(june(5)):
            response = await client.request(
                "DELETE",
                "/bundle",
                json={"app_id": APP_ID, "version": "1.1.0"},
                headers=alice.headers,
            )
            assert response.status_code == 200, response.text
        with on(june(7)):
            body = await points(client, f"/app/{APP_ID}", alice, date(2026, 5, 31), june(7))

        both = first_size + second_size
        assert (
            column(body, "storage") == [0, first_size, first_size, both, both] + [second_size] * 3
        )


class TestBandwidth:
    async def test_bytes_sent_each_day_full_and_partial_downloads(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        size = await _app_with_bundle(client, alice)
        with on(june(2)):
            answer = await check_for_update(client, DEVICE_A)
            assert answer.get("version") == "1.1.0", answer
            assert len(await download(client, answer["url"])) == size
            assert len(await download(client, answer["url"], "bytes=0-99")) == 100
        with on(june(3)):
            assert len(await download(client, answer["url"], "bytes=-10")) == 10
        with on(june(4)):
            body = await points(client, f"/app/{APP_ID}", alice, june(1), june(4))

        assert column(body, "bandwidth") == [0, size + 100, 10, 0]
