"""Fuzzing: ``schemathesis run`` against a real ``capgo-server serve`` and its own
``/openapi.json``, every phase (examples, coverage, fuzzing, stateful), on each engine.

A realistic account is seeded through the API first (a user with an ``all`` key, an app, a
public and a private channel, two bundles, a device that asked for an update and is pinned to a
channel, a second key, a sub-key limited to the organization, a pending member invitation, an
unfinished upload; and a spare organization and app for destructive requests). The hooks
(:mod:`tests.security.fuzz_hooks`) mix the seeded names into the generated requests, vary the
caller (valid key, no key, unknown key) and count, per phase, the requests, those that reached a
handler (:func:`tests.security.fuzz_hooks.reached_handler`) and the server errors.

Every answer must pass ``not_a_server_error`` (no 5xx), ``status_code_conformance`` (the status
is documented for the operation), ``content_type_conformance`` and
``response_schema_conformance`` (the body matches the schema documented for that status).
Rate limits are raised for this run only (they have their own tests). Run it alone with::

    .venv/bin/pytest tests/security/test_fuzz_openapi.py -q               # CI size
    CAPGO_FUZZ_EXAMPLES=100 CAPGO_FUZZ_MAX_TIME=1200 \\
        .venv/bin/pytest tests/security/test_fuzz_openapi.py -q            # a deeper hunt

``CAPGO_FUZZ_RESULTS=bench/results`` also writes each engine's figures there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.live import LiveServer, live_server

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = int(os.environ.get("CAPGO_FUZZ_EXAMPLES", "10"))
#: Seconds schemathesis may spend in all (its ``--max-time``): keeps CI within minutes even on a
#: busy machine; the phases run in order, so a budget too small starves the last (stateful).
MAX_TIME = int(os.environ.get("CAPGO_FUZZ_MAX_TIME", "170"))
PHASES = ("examples", "coverage", "fuzzing", "stateful")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
UNKNOWN_KEY = "00000000-0000-4000-8000-00000000dead"
DEVICE_ID = "00000000-f022-4000-8000-000000000001"
#: The fuzzer sends far more requests from one address and one key than any limit allows, and
#: 429 for everything would hide the code behind the limits.
RATE_LIMITS_OFF = {
    "CAPGO_RATE_LIMIT_FAILED_AUTH": str(10**9),
    "CAPGO_RATE_LIMIT_API_KEY_PER_MINUTE": str(10**9),
    "CAPGO_RATE_LIMIT_DEVICE_PER_MINUTE": str(10**9),
    "CAPGO_RATE_LIMIT_IP_PER_MINUTE": str(10**9),
    "CAPGO_RATE_LIMIT_CHANNEL_SELF_SAME_CHANNEL_SECONDS": "0",
}


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _app_with_bundles(http: httpx.Client, org_id: str, app_id: str) -> None:
    _ok(http.post("/app", json={"app_id": app_id, "name": "Fuzz", "owner_org": org_id}))
    for version in ("1.0.0", "1.1.0"):
        bundle = {
            "app_id": app_id,
            "version": version,
            "external_url": f"https://cdn.example.com/{version}.zip",
            "checksum": "a" * 64,
        }
        _ok(http.post("/bundle", json=bundle))
    for name, public, version in (("production", True, "1.1.0"), ("beta", False, "1.0.0")):
        channel = {
            "app_id": app_id,
            "channel": name,
            "version": version,
            "public": public,
            "allow_device_self_set": True,
        }
        _ok(http.post("/channel", json=channel))


def seed_account(live: LiveServer) -> dict[str, Any]:
    """The seed the hooks read: the key, the values replacing generated fields, and the spare
    organization, app and key that destructive requests are redirected to."""
    member_email = "member@fuzz.example"
    live.create_user(member_email)
    app_id, spare_app = "com.fuzz.app", "com.fuzz.spare"
    with live.http() as http:
        _app_with_bundles(http, live.org_id, app_id)
        spare_org = _ok(http.post("/organization", json={"name": "Spare Org"}))["id"]
        _app_with_bundles(http, spare_org, spare_app)
        device = {
            "app_id": app_id,
            "device_id": DEVICE_ID,
            "platform": "android",
            "version_name": "1.0.0",
            "version_build": "1.0.0",
            "version_os": "14",
            "plugin_version": "7.0.0",
            "is_emulator": False,
            "is_prod": True,
        }
        assert _ok(http.post("/updates", json=device))["version"] == "1.1.0"
        _ok(
            http.post("/device", json={"app_id": app_id, "device_id": DEVICE_ID, "channel": "beta"})
        )
        invite = {"orgId": live.org_id, "email": member_email, "invite_type": "read"}
        _ok(http.post("/organization/members", json=invite))
        victim = _ok(http.post("/apikey", json={"name": "victim", "mode": "read"}))
        subkey = _ok(http.post("/apikey", json={"name": "sub", "limited_to_orgs": [live.org_id]}))
        own_key_id = next(k["id"] for k in _ok(http.get("/apikey")) if k["key"] == live.key)
        path = f"orgs/{live.org_id}/apps/{app_id}/2.0.0.zip"
        metadata = f"filename {base64.b64encode(path.encode()).decode()}"
        upload = http.post(
            "/files/upload/attachments/",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Upload-Metadata": metadata},
        )
        assert upload.status_code == 201, upload.text
    values = {
        "app_id": app_id,
        "appid": app_id,
        "orgId": live.org_id,
        "org_id": live.org_id,
        "owner_org": live.org_id,
        "channel": "production",
        "defaultChannel": "production",
        "version": "1.0.0",
        "device_id": DEVICE_ID,
        "email": member_email,
        "key_id": str(victim["id"]),
        "platform": "android",
        "version_name": "1.0.0",
        "version_build": "1.0.0",
        "plugin_version": "7.0.0",
        "upload_id": upload.headers["location"].rsplit("/", 1)[-1],
        "Upload-Metadata": metadata,
        "x-limited-key-id": str(subkey["id"]),
    }
    spare = {live.org_id: spare_org, app_id: spare_app, str(own_key_id): str(victim["id"])}
    return {"key": live.key, "values": values, "spare": spare}


def run_schemathesis(live: LiveServer, workdir: Path, seed: dict[str, Any]) -> dict[str, Any]:
    """``schemathesis run`` with the hooks; its output and the hooks' tally."""
    seed_file, tally_file = workdir / "fuzz-seed.json", workdir / "fuzz-tally.json"
    seed_file.write_text(json.dumps(seed))
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{live.base_url}/openapi.json",
        "--phases",
        ",".join(PHASES),
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES),
        "--max-time",
        str(MAX_TIME),
        "--seed",
        "20240601",
        "--workers",
        "1",
        "--generation-with-security-parameters",
        "false",
        "--continue-on-failure",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.security.fuzz_hooks",
        "CAPGO_FUZZ_SEED": str(seed_file),
        "CAPGO_FUZZ_TALLY": str(tally_file),
    }
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=MAX_TIME + 300
    )
    seconds = round(time.monotonic() - started, 1)
    tally = json.loads(tally_file.read_text()) if tally_file.exists() else {}
    return {
        "exit": result.returncode,
        "output": result.stdout + result.stderr,
        "seconds": seconds,
        "phases": tally,
    }


def test_every_phase_runs_and_reaches_handlers_without_server_errors(
    database_url: str, tmp_path: Path
) -> None:
    with live_server(database_url, tmp_path, **RATE_LIMITS_OFF) as live:
        seed = seed_account(live)
        run = run_schemathesis(live, tmp_path, seed)
        with live.http() as http:
            key_still_works = http.get("/app").status_code
        with live.http(UNKNOWN_KEY) as http:
            unknown_refused = http.get("/app").status_code
        server_log = live.server.output()
    engine = database_url.split(":", 1)[0].split("+", 1)[0]
    figures = {
        "engine": engine,
        "examples": EXAMPLES,
        "max_time": MAX_TIME,
        "seconds": run["seconds"],
        "phases": run["phases"],
    }
    results_dir = os.environ.get("CAPGO_FUZZ_RESULTS")
    if results_dir:
        Path(results_dir, f"fuzz-{engine}.json").write_text(json.dumps(figures, indent=2) + "\n")
    summary = json.dumps(figures, indent=1)[:6000]
    tail = run["output"][-6000:]
    assert run["exit"] == 0, f"{tail}\n{summary}"
    assert set(run["phases"]) == set(PHASES), summary
    for phase, entry in run["phases"].items():
        assert entry["server_errors"] == [], f"{phase}: {entry['server_errors']}"
        assert entry["reached_handler"] > 0, f"{phase}: {summary}"
    assert "Traceback" not in server_log, server_log[-4000:]
    # The run never lost the key the valid-key requests use (destructive requests are aimed at
    # spare objects), and an unknown key is still refused.
    assert (key_still_works, unknown_refused) == (200, 401)
