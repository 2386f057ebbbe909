"""Redirects never point at the host a request names (found in review): Starlette's slash
redirects (``/docs/`` -> ``/docs``, ``/docs/static`` -> ``/docs/static/``, ``/app/`` ->
``/app``) built an absolute ``Location`` from the ``Host`` header, so anyone could make this
server redirect to a host of their choosing (cache poisoning behind a shared cache)."""

from __future__ import annotations

from pathlib import Path

from tests.live import live_server

CASES = [
    ("/docs/", "/docs"),
    ("/docs/static", "/docs/static/"),
    ("/redoc/", "/redoc"),
    ("/app/?page=1", "/app?page=1"),
]


def test_slash_redirects_stay_on_this_server(database_url: str, tmp_path: Path) -> None:
    with live_server(database_url, tmp_path) as live, live.http(key="") as http:
        for asked, target in CASES:
            response = http.get(asked, headers={"host": "evil.example"})
            assert response.status_code == 307, asked
            assert response.headers["location"] == target, asked
            assert "evil.example" not in response.text
        # Followed, the relative target is the page itself.
        followed = http.get("/docs/", follow_redirects=True, headers={"accept": "text/html"})
        assert followed.status_code == 200
        assert str(followed.url) == f"{live.base_url}/docs"


def test_a_location_is_never_protocol_relative() -> None:
    from capgo_server.redirects import relative_location

    assert relative_location("http://evil.example//other.example/x?a=1") == "/other.example/x?a=1"
    assert relative_location("http://h/\\other.example") == "/other.example"
    assert relative_location("http://h") == "/"
