"""The FastAPI application: create_app(settings) wires settings, routes, errors and lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from device.service.context import ServiceContext, build_context
from device.service.errors import install_error_handlers
from device.service.middleware import HeadAsGet, RequestMiddleware
from device.service.routes import health, metrics, model, predict, preview, readings
from device.service.settings import ServiceSettings

log = logging.getLogger("device.service")

DOCS_ASSETS_URL = "/docs-assets"


def _announce_camera(context: ServiceContext) -> None:
    camera = context.camera
    if not camera.enabled:
        log.info("camera disabled (camera none): serving uploads only (POST /predict)")
    elif camera.ready:
        log.info("camera %s ready", camera.name)
    else:
        # The camera loop has logged why, once; this says what the service does meanwhile.
        log.info(
            "camera not available yet: serving uploads (POST /predict); GET /predict answers "
            "503 until the camera delivers a frame"
        )


async def _measure_loop_lag(context: ServiceContext, period: float = 0.25) -> None:
    loop = asyncio.get_running_loop()
    while True:
        scheduled = loop.time() + period
        await asyncio.sleep(period)
        context.metrics.loop_lag.observe(max(0.0, loop.time() - scheduled))


def create_app(settings: ServiceSettings, context: ServiceContext | None = None) -> FastAPI:
    """The app for `settings`. Pass a prebuilt `context` to load the model before serving."""
    context = context or build_context(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Opening a camera can block for seconds (USB enumeration, libcamera): not on the loop.
        await anyio.to_thread.run_sync(context.camera.start, settings.capture_timeout_s)
        _announce_camera(context)
        # Everything built so far (modules, routes, schemas, the model) lives as long as the
        # service: frozen out of the garbage collector's sight, it is not walked again by
        # every full collection, which otherwise paused the loop for milliseconds under load
        # (the p99 of bench/http_ceiling.py's uploads).
        gc.collect()
        gc.freeze()
        lag_probe = asyncio.create_task(_measure_loop_lag(context))
        if context.watch is not None:
            await context.watch.start()
        try:
            yield
        finally:
            lag_probe.cancel()
            if context.watch is not None:
                # Before the camera goes: the loop reads it; publishers say "offline".
                await context.watch.stop()
            # Runs after uvicorn has let in-flight requests finish (graceful shutdown).
            await anyio.to_thread.run_sync(context.camera.close)
            log.info("camera released; shutting down")

    # /docs (Swagger UI) and /redoc (ReDoc) with their files served from the installed
    # package rather than a CDN, so they also work on a Pi without internet.
    app = FastAPIOffline(
        title="Pi digit reader",
        summary="Reads handwritten digits from the camera or an uploaded image.",
        # HEAD is answered by a middleware, not listed per route (see middleware.HeadAsGet).
        description="Every GET path also answers HEAD: the same status and headers, no body.",
        version="1",
        lifespan=lifespan,
        static_url=DOCS_ASSETS_URL,
        # Swagger UI would otherwise offer to send the schema to an online validator.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.context = context
    install_error_handlers(app)
    for module in (predict, health, model, metrics, readings):
        app.include_router(module.router)
    if settings.preview:  # off: /, /stream.mjpg and /preview/latest are plain 404s
        app.include_router(preview.router)
    # Inside RequestMiddleware (added later, so outside it), which logs and counts a HEAD as such.
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        RequestMiddleware,
        metrics=context.metrics,
        token=settings.token_value,
        login_page=preview.static_file("login.html") if settings.preview else None,
    )
    return app
