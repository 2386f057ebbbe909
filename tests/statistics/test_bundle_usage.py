"""``GET /statistics/app/:app_id/bundle_usage``: each bundle's share of the devices per day
(Capgo's estimate, spec §3.3) with the raw installs, uninstalls and failures from ``/stats``."""

from __future__ import annotations

import httpx

from tests.conftest import Account
from tests.statistics.support import (
    APP_ID,
    DEVICE_A,
    DEVICE_B,
    DEVICE_C,
    create_app,
    june,
    on,
    report,
    stats,
)


async def _register(client: httpx.AsyncClient, owner: Account, version: str) -> None:
    body = {
        "app_id": APP_ID,
        "version": version,
        "external_url": f"https://cdn.example.com/{version}.zip",
        "checksum": "3885ee49",
    }
    response = await client.post("/bundle", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


async def test_shares_and_counts_per_day(client: httpx.AsyncClient, alice: Account) -> None:
    await create_app(client, alice)
    await _register(client, alice, "1.1.0")
    await _register(client, alice, "1.2.0")
    with on(june(1)):
        await report(client, DEVICE_A, "set", "1.1.0")
        await report(client, DEVICE_B, "set", "1.1.0")
        # An emulator's install is not counted (spec §5.4).
        await report(client, DEVICE_C, "set", "1.1.0", is_emulator=True)
    with on(june(2)):
        await report(client, DEVICE_C, "set", "1.2.0", old_version_name="1.1.0")
        await report(client, DEVICE_A, "download_fail", "1.2.0")
    with on(june(4)):
        response = await stats(
            client,
            f"/app/{APP_ID}/bundle_usage",
            alice.headers,
            **{"from": "2026-06-01", "to": "2026-06-30"},
        )

    assert response.status_code == 200, response.text
    # June 1: 1.1.0 on 2 devices. June 2: one new install of 1.2.0 moves half of yesterday's
    # devices off 1.1.0 (2 → 1), and the uninstall takes the last one: 1.2.0 has them all.
    assert response.json() == {
        "labels": ["2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04"],
        "datasets": [
            {
                "label": "1.1.0",
                "data": [100.0, 0.0, 0.0, 0.0],
                "installs": [2, 0, 0, 0],
                "uninstalls": [0, 1, 0, 0],
                "fails": [0, 0, 0, 0],
            },
            {
                "label": "1.2.0",
                "data": [0.0, 100.0, 100.0, 100.0],
                "installs": [0, 1, 0, 0],
                "uninstalls": [0, 0, 0, 0],
                "fails": [0, 1, 0, 0],
            },
        ],
    }


async def test_a_day_without_devices_repeats_the_previous_one_except_today(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """When the estimate leaves no device on any bundle, the previous day's shares are kept
    (data not in yet), except for today."""
    await create_app(client, alice)
    for version in ("1.1.0", "1.2.0", "1.3.0"):
        await _register(client, alice, version)
    with on(june(1)):
        await report(client, DEVICE_C, "set", "1.3.0")
    with on(june(2)):
        # Two new installs, as many as yesterday's devices: 1.3.0's device is taken to have
        # moved; each new install is matched by an uninstall of the other bundle.
        await report(client, DEVICE_A, "set", "1.2.0", old_version_name="1.1.0")
        await report(client, DEVICE_B, "set", "1.1.0", old_version_name="1.2.0")
    with on(june(3)):
        response = await stats(
            client,
            f"/app/{APP_ID}/bundle_usage",
            alice.headers,
            **{"from": "2026-06-01", "to": "2026-06-03"},
        )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["labels"] == ["2026-06-01", "2026-06-02", "2026-06-03"]
    shares = {dataset["label"]: dataset["data"] for dataset in body["datasets"]}
    assert shares == {
        "1.1.0": [0.0, 0.0, 0.0],
        "1.2.0": [0.0, 0.0, 0.0],
        "1.3.0": [100.0, 100.0, 0.0],
    }
    installs = {dataset["label"]: dataset["installs"] for dataset in body["datasets"]}
    assert installs == {"1.1.0": [0, 1, 0], "1.2.0": [0, 1, 0], "1.3.0": [1, 0, 0]}
