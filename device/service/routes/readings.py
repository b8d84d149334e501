"""GET /reading (the current stable reading, nothing captured) and GET /readings/stream (SSE)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from device.service.context import ServiceContext
from device.service.deps import ContextDep
from device.service.errors import ServiceError
from device.service.schemas import ErrorBody, StableReading
from device.service.watch import WatchLoop

router = APIRouter(tags=["readings"])

_WATCH_OFF = {503: {"model": ErrorBody, "description": "the watch loop is off, or has no reading"}}
HOW_TO_WATCH = (
    "start the service with DIGITS_WATCH=true (or --watch, or with DIGITS_MQTT_URL set); "
    "GET /predict reads a frame now"
)


def _watching(context: ServiceContext) -> WatchLoop:
    if context.watch is None:
        raise ServiceError(
            503, "watch_off", "the watch loop is off, so there is no stable reading", HOW_TO_WATCH
        )
    return context.watch


@router.get(
    "/reading",
    response_model=StableReading,
    responses=_WATCH_OFF,
    summary="The current stable reading, without capturing anything (for pollers)",
)
async def reading(context: ContextDep) -> StableReading:
    watch = _watching(context)
    current = watch.current
    if current is None:
        needed = watch.tracker.frames_needed
        camera = watch.camera
        why = f"; camera: {camera.reason}" if camera is not None and not camera.ready else ""
        raise ServiceError(
            503,
            "no_stable_reading",
            f"no stable reading yet: the same number, not uncertain, must be read in {needed} "
            f"frames in a row{why}",
            "ask again in a few seconds; GET /predict reads a frame now",
            headers={"Retry-After": "2"},
        )
    return current


@router.get(
    "/readings/stream",
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: reading` (id = seq, data = a StableReading) on connect and "
            "on every change; a `: heartbeat` comment when nothing changed for "
            "DIGITS_STREAM_HEARTBEAT_S",
        },
        **_WATCH_OFF,
    },
    response_class=StreamingResponse,
    summary="Server-Sent Events: one event per change of the stable reading",
)
async def stream(context: ContextDep) -> StreamingResponse:
    watch = _watching(context)
    events = watch.events.stream(watch.current, context.settings.stream_heartbeat_s)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
