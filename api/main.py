"""The FastAPI app factory, its start-up and shutdown, and the request log.

``labourmatch serve`` runs ``uvicorn.run(create_app(), ...)``. Start-up, in
the app's lifespan:

1. migrate the database to the latest schema (Alembic, run in code);
2. create the first admin key when there is no key at all;
3. load or create the pseudonym secret;
4. mark rounds interrupted by a previous stop as failed;
5. load the matching engine, unless the caller passed one (the tests share
   one engine between apps).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import ServiceContext
from api.db import Database, create_database_engine
from api.errors import install_error_handlers
from api.routes import agreements, keys, registrants, rounds, shortlists, vacancies
from api.services.keys import bootstrap_admin_key, load_pseudonym_secret
from api.services.registry import RegistrantRegistry
from api.services.rounds import fail_interrupted_rounds
from api.settings import Settings
from matching.rounds import MatchingEngine

logger = logging.getLogger("api")
request_logger = logging.getLogger("api.requests")

API_PREFIX = "/v1"


class RequestLogMiddleware:
    """Log one line per HTTP request: method, path, status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            request_logger.info(
                "%s %s %d %.1f ms",
                scope["method"],
                scope["path"],
                status_code,
                (time.perf_counter() - started) * 1000,
            )


def configure_logging(level: str) -> None:
    """Send the service's log to standard error unless the host configured logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("api").setLevel(level)


def _start(settings: Settings, engine: MatchingEngine | None) -> ServiceContext:
    logger.info("starting labourmatch service with settings %s", settings.loggable())
    database = Database(
        create_database_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
    )
    database.upgrade()
    bootstrap_admin_key(
        database,
        settings.bootstrap_admin_key.get_secret_value()
        if settings.bootstrap_admin_key
        else None,
    )
    secret = load_pseudonym_secret(
        database,
        settings.pseudonym_secret.get_secret_value()
        if settings.pseudonym_secret
        else None,
    )
    if engine is None:
        started = time.perf_counter()
        engine = MatchingEngine.from_fixtures(cache_dir=settings.label_cache_dir)
        engine.builder.encoder.num_threads = settings.embedding_threads
        logger.info("matching engine loaded in %.1f s", time.perf_counter() - started)
    builder_lock = threading.RLock()
    context = ServiceContext(
        settings=settings,
        database=database,
        engine=engine,
        registry=RegistrantRegistry(engine.builder, builder_lock),
        pseudonym_secret=secret,
        builder_lock=builder_lock,
    )
    fail_interrupted_rounds(context)
    return context


def create_app(
    settings: Settings | None = None, *, engine: MatchingEngine | None = None
) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings
        Configuration; read from ``LABOURMATCH_*`` environment variables when
        omitted.
    engine
        A loaded matching engine to share; loaded at start-up when omitted.
    """
    resolved = settings or Settings()
    configure_logging(resolved.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = _start(resolved, engine)
        app.state.context = context
        logger.info("labourmatch service ready")
        try:
            yield
        finally:
            context.rounds.shutdown(wait=True, cancel_futures=True)
            context.registry.close()
            context.database.dispose()
            logger.info("labourmatch service stopped")

    app = FastAPI(
        title="labourmatch",
        summary="Bilateral job matching for labour-migration programmes.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(RequestLogMiddleware)
    api = APIRouter(prefix=API_PREFIX)
    for module in (registrants, vacancies, shortlists, agreements, rounds, keys):
        api.include_router(module.router)
    api.add_api_route("/health", _health, methods=["GET"], tags=["health"])
    app.include_router(api)
    return app


def _health() -> dict[str, Any]:
    """Tell whether the service is up; needs no key."""
    return {"status": "ok"}
