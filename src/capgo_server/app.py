"""The application factory: routers, error handlers, and the engine's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from capgo_server import __version__
from capgo_server.apikeys.endpoints import apikey_router
from capgo_server.apps.endpoints import apps_router
from capgo_server.auth.ratelimit import FixedWindowLimiter, RateLimiters
from capgo_server.bundles.endpoints import bundles_router
from capgo_server.channels.endpoints import channels_router
from capgo_server.cli_compat import install as install_cli_compat
from capgo_server.db.engine import make_engine, make_sessionmaker, pool_options
from capgo_server.devices.endpoints import devices_router
from capgo_server.docs_pages import install_docs
from capgo_server.errors import install_error_handlers
from capgo_server.files import downloads
from capgo_server.files.endpoints import files_router
from capgo_server.forwarded import ForwardedHeadersMiddleware
from capgo_server.home import install_home
from capgo_server.members.endpoints import members_router
from capgo_server.openapi import install_openapi
from capgo_server.organizations.endpoints import organization_router
from capgo_server.plugin.channel_self import channel_self_router
from capgo_server.plugin.common import PluginRefusal
from capgo_server.plugin.recorder import Recorder
from capgo_server.plugin.stats import stats_router
from capgo_server.plugin.update_cache import UpdateCache
from capgo_server.plugin.updates import updates_router
from capgo_server.redirects import RelativeRedirectsMiddleware
from capgo_server.serving import tune_garbage_collector
from capgo_server.settings import Settings
from capgo_server.statistics.endpoints import statistics_router
from capgo_server.statistics.renderer import ChartRenderer
from capgo_server.storage.factory import make_store

# Headers Capgo's API accepts cross-origin (spec §1.2).
CORS_HEADERS = [
    "Content-Type",
    "Authorization",
    "capgkey",
    "capgo_api",
    "x-api-key",
    "x-limited-key-id",
    "apisecret",
    "apikey",
    "x-client-info",
    # tus uploads from a browser
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
]
TUS_EXPOSED_HEADERS = [
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
]


def create_served_app() -> FastAPI:
    """The factory ``capgo-server serve`` gives uvicorn: :func:`create_app`, and the worker's
    garbage collector tuned once the app has started (:func:`tune_garbage_collector`)."""
    app = create_app(proxy_headers_outside=False)  # serving.run turns uvicorn's off
    app.state.tune_garbage_collector = True
    return app


def create_app(settings: Settings | None = None, *, proxy_headers_outside: bool = True) -> FastAPI:
    """The application. ``proxy_headers_outside``: whether the server running it may already
    have taken client addresses from ``X-Forwarded-For`` (plain uvicorn does for loopback
    peers; ``serve`` does not), see :mod:`capgo_server.forwarded`."""
    settings = settings or Settings()
    if settings.env == "production":
        # However it is served, a production app never starts unable to sign its URLs.
        settings.resolved_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.resolved_database_url,
            **pool_options(
                settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout_seconds
            ),
        )
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # The device hot path's per-worker state (plugin.update_cache, plugin.recorder).
        app.state.update_cache = update_cache = UpdateCache(app.state.sessionmaker)
        app.state.recorder = recorder = Recorder(
            app.state.sessionmaker,
            interval=settings.record_interval_seconds,
            idle_delay=settings.record_idle_delay_seconds,
        )
        recorder.start()
        app.state.chart_renderer = chart_renderer = ChartRenderer(
            settings.chart_renderers, settings.chart_wait_seconds
        )
        if getattr(app.state, "tune_garbage_collector", False):
            tune_garbage_collector()
        try:
            yield
        finally:
            await recorder.close()  # write the last recordings before the engine goes
            await update_cache.close()
            chart_renderer.close()
            await downloads.finish_recording()
            await engine.dispose()

    app = FastAPI(
        title="capgo-server",
        version=__version__,
        description="A self-hostable, Capgo-compatible live-update server. Authenticate with "
        "an API key in the `authorization` (or `capgkey`) header.",
        lifespan=lifespan,
        docs_url=None,  # docs_pages serves both without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.bundle_store = make_store(settings)
    app.state.rate_limiters = RateLimiters(
        failed_auth_per_ip=FixedWindowLimiter(
            settings.rate_limit_failed_auth, settings.rate_limit_failed_auth_window_seconds
        ),
        requests_per_key=FixedWindowLimiter(settings.rate_limit_api_key_per_minute, 60),
        device_requests=FixedWindowLimiter(settings.rate_limit_device_per_minute, 60),
        device_requests_per_ip=FixedWindowLimiter(settings.rate_limit_ip_per_minute, 60),
        channel_self_same_channel=FixedWindowLimiter(
            1, settings.rate_limit_channel_self_same_channel_seconds
        ),
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    install_home(app)

    async def plugin_refusal(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, PluginRefusal)
        return exc.response()

    app.add_exception_handler(PluginRefusal, plugin_refusal)
    app.add_middleware(RelativeRedirectsMiddleware)  # slash redirects never name a Host
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_headers=CORS_HEADERS,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        expose_headers=TUS_EXPOSED_HEADERS,
    )
    # Added last, so it runs first: everything after it sees the client address it settled.
    app.add_middleware(
        ForwardedHeadersMiddleware,
        trusted_proxies=settings.trusted_proxy_networks,
        proxy_headers_outside=proxy_headers_outside,
    )

    async def ok() -> dict[str, str]:
        """Liveness check."""
        return {"status": "ok"}

    for method in ("GET", "POST"):
        app.add_api_route(
            "/ok", ok, methods=[method], tags=["health"], operation_id=f"ok_{method.lower()}"
        )

    # The device protocol first: a request is matched against the routes in order, and the
    # device endpoints carry almost all of the traffic (no path here overlaps another).
    app.include_router(updates_router)
    app.include_router(stats_router)
    app.include_router(channel_self_router)
    app.include_router(organization_router)
    app.include_router(members_router)
    app.include_router(apikey_router)
    app.include_router(apps_router)
    app.include_router(channels_router)
    app.include_router(devices_router)
    app.include_router(bundles_router)
    app.include_router(statistics_router)
    app.include_router(files_router)
    install_cli_compat(app)  # the official @capgo/cli's own routes (issue #16)
    return app
