import httpx


class TestHealth:
    async def test_ok_answers_status_ok(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ok")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_unknown_route_is_not_found_envelope(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/no/such/route")
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "message": "Not found"}

    async def test_openapi_and_docs_are_served(self, client: httpx.AsyncClient) -> None:
        spec = await client.get("/openapi.json")
        assert spec.status_code == 200
        paths = spec.json()["paths"]
        for path in (
            "/organization",
            "/organization/members",
            "/organization/members/accept",
            "/organization/audit",
            "/apikey",
            "/apikey/{key_id}",
            "/ok",
        ):
            assert path in paths
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()

    async def test_every_route_reading_the_database_documents_the_overload_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        """503 ``service_unavailable`` (an exhausted pool, tests/test_slow_clients.py) may
        come from any route but ``/ok``, so the document says so, with ``Retry-After``."""
        paths = (await client.get("/openapi.json")).json()["paths"]
        for path, operations in paths.items():
            for method, operation in operations.items():
                overloaded = operation["responses"].get("503")
                if path == "/ok":
                    assert overloaded is None
                    continue
                assert overloaded is not None, (method, path)
                assert "service_unavailable" in overloaded["description"], (method, path)
                assert "Retry-After" in overloaded["headers"], (method, path)
