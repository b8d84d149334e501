"""The live preview: GET / (the page), /stream.mjpg (the camera, capped rate), /preview/latest.

app.py includes this router only when DIGITS_PREVIEW is on, so with it off these paths are
plain 404s. They sit behind the token like everything but /healthz; a browser can present it as
the `digits_token` cookie that the login box sets (see middleware.py).
"""

from __future__ import annotations

import time
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from device.service.context import ServiceContext
from device.service.deps import ContextDep
from device.service.errors import ServiceError
from device.service.frames import BOUNDARY, FrameBroadcaster
from device.service.preview_readings import PreviewReadings

router = APIRouter(tags=["preview"])

STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "login.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# The picture changes every frame: no cache may keep an old one.
NO_STORE = {"Cache-Control": "no-store"}


@cache
def static_file(name: str) -> bytes:
    """One of the page's files, shipped as package data (device/service/static/)."""
    return resources.files("device.service").joinpath("static", name).read_bytes()


class Preview:
    """The broadcaster and the readings of one app (kept on app.state)."""

    def __init__(self, context: ServiceContext) -> None:
        self.frames = FrameBroadcaster(context.camera, context.settings.preview_fps)
        self.readings = PreviewReadings(context.camera_readings, context.model)


async def get_preview(request: Request) -> Preview:
    state = request.app.state
    if getattr(state, "preview", None) is None:
        state.preview = Preview(state.context)
    return state.preview


PreviewDep = Annotated[Preview, Depends(get_preview)]


@router.get("/", summary="The live preview page", response_class=Response)
async def page() -> Response:
    return Response(static_file("index.html"), media_type=STATIC_TYPES["index.html"])


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    if name not in STATIC_TYPES:
        raise ServiceError(404, "not_found", f"no static file {name!r}")
    return Response(
        static_file(name), media_type=STATIC_TYPES[name], headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/stream.mjpg",
    summary="The camera as an MJPEG stream (multipart/x-mixed-replace), at most DIGITS_PREVIEW_FPS",
    response_class=StreamingResponse,
)
async def stream(preview: PreviewDep) -> StreamingResponse:
    return StreamingResponse(
        preview.frames.stream(),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={**NO_STORE, "X-Accel-Buffering": "no"},
    )


@router.get(
    "/preview/latest",
    summary="The latest preview frame's reading, its 28×28 inputs (PNG data URLs) and history",
)
async def latest(context: ContextDep, preview: PreviewDep) -> Response:
    camera = context.camera
    frame = await preview.frames.fresh_frame(timeout=context.settings.capture_timeout_s + 1.0)
    reading = await preview.readings.summary(frame) if frame is not None else None
    body: dict[str, Any] = {
        "camera": {"name": camera.name, "ready": camera.ready, "reason": camera.reason},
        "roi": context.settings.roi,
        "fps": context.settings.preview_fps,
        "frame": None,
        "reading": reading,
        "history": preview.readings.history_json(),
        # The stable reading itself comes from /readings/stream; this says whether the watch
        # loop runs and how the publishers are doing.
        **context.watch_status(),
    }
    if frame is not None:
        age_ms = round((time.monotonic() - frame.captured_at) * 1000, 1)
        body["frame"] = {"seq": frame.seq, "age_ms": age_ms, "reason": frame.reason}
        if frame.frame is not None:
            body["frame"].update(width=frame.frame.shape[1], height=frame.frame.shape[0])
    return JSONResponse(body, headers=NO_STORE)
