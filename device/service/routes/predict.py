"""GET /predict reads the camera; POST /predict reads an uploaded image."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from pydantic_core import to_json

from device.answer import Answer, Source, reading_answer
from device.picture import Decoded, ImageHeader, decoded_pixels, small_picture_header
from device.reader import Reading
from device.service.camera_supervisor import CameraUnavailableError
from device.service.context import ServiceContext
from device.service.deps import ContextDep, context_of
from device.service.errors import ServiceError
from device.service.schemas import ErrorBody
from device.service.uploads import HOW_TO_UPLOAD, decode_upload, read_upload, upload_header

router = APIRouter(tags=["predict"])

INLINE_MAX_PIXELS = 28 * 28  # uploads this small are read on the event loop (predict_upload)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a damaged image, an empty body, or malformed"},
    413: {"model": ErrorBody, "description": "upload or declared image size over the limit"},
    415: {"model": ErrorBody, "description": "not an image, a format this installation "
                                             "cannot read (HEIC without pi-heif), an image as "
                                             "base64 text, or a Content-Encoding (gzip...)"},
    422: {"model": ErrorBody, "description": "multipart body without a 'file' field"},
    503: {"model": ErrorBody, "description": "the camera is absent, failing or hung; or, for "
                                             "an upload, the server is receiving as many at "
                                             "once as it takes (busy: send it again)"},
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": HOW_TO_UPLOAD,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _answer(
    context: ServiceContext, reading: Reading, source: Source, capture_ms: float, started: float
) -> dict[str, Any]:
    answer = reading_answer(
        reading,
        source=source,
        model=context.model,
        capture_ms=capture_ms,
        total_ms=_ms(time.perf_counter() - started),
    )
    context.metrics.observe_reading(source, reading.digit, answer["timings_ms"])
    return answer


def _decode(
    context: ServiceContext, data: bytes, header: ImageHeader | None = None
) -> tuple[Decoded, float]:
    """An upload's picture, no larger than the reader needs, and its decode time in ms."""
    decode_started = time.perf_counter()
    picture = decode_upload(
        data, context.settings.max_image_pixels, context.reader.picture_side, header)
    return picture, _ms(time.perf_counter() - decode_started)


def _unusable(exc: ValueError) -> ServiceError:
    """The reader's word for a frame it cannot use (e.g. 1×1 pixels), as the client's error."""
    return ServiceError(400, "unusable_image", str(exc), HOW_TO_UPLOAD)


def _decode_and_read(
    context: ServiceContext, data: bytes, header: ImageHeader | None = None
) -> tuple[Reading, float]:
    """An upload's reading and its decode time in ms (one worker-thread hop for both, where
    the caller hands it to one)."""
    picture, capture_ms = _decode(context, data, header)
    try:
        return context.reader.read_picture(picture), capture_ms
    except ValueError as exc:
        raise _unusable(exc) from None


def _decode_and_read_within_budget(context: ServiceContext, data: bytes) -> tuple[Reading, float]:
    """_decode_and_read, once the pictures being decoded leave room in the budget for this
    one (uploads.PixelBudget); in a worker thread, which waits for it."""
    header = upload_header(data, context.settings.max_image_pixels)
    pixels = decoded_pixels(header, context.reader.picture_side)
    with context.decode_budget.room_for(pixels):
        return _decode_and_read(context, data, header)


def _respond(request: Request, answer: dict[str, Any]) -> Response:
    """The answer as JSON, written once: it is built in `Answer`'s shape by `reading_answer`
    (whose tests hold it to the schema), so FastAPI's validate-then-serialize pass would only
    repeat it. Also adds the reading to this request's log line."""
    request.state.log_fields = {
        "source": answer["source"],
        "digit": answer["digit"],
        "number": answer["number"],
        "total_ms": answer["timings_ms"]["total"],
    }
    return Response(to_json(answer), media_type="application/json")


@router.get(
    "/predict",
    response_model=Answer,
    responses={503: _ERRORS[503]},
    summary="Capture a frame from the camera and read the digits in it",
)
async def predict_camera(request: Request, context: ContextDep) -> Response:
    started = time.perf_counter()
    try:
        frame = await context.camera.capture()
    except CameraUnavailableError as exc:
        if not context.camera.enabled:
            raise ServiceError(
                503,
                "camera_disabled",
                str(exc),
                "POST an image to /predict, or start the service with a --camera source",
            ) from None
        raise ServiceError(
            503,
            "camera_unavailable",
            str(exc),
            "a working camera (it is reopened in the background), or POST an image to /predict",
            headers={"Retry-After": str(max(1, round(context.settings.camera_retry_s)))},
        ) from None
    capture_ms = _ms(time.perf_counter() - started)
    try:
        reading = await context.camera_readings.read(frame)
    except ValueError as exc:  # the reader's word for a frame it cannot use
        raise ServiceError(503, "camera_unavailable", f"unusable camera frame: {exc}") from None
    return _respond(request, _answer(context, reading, "camera", capture_ms, started))


@router.post(
    "/predict",
    response_model=Answer,
    responses=_ERRORS,
    openapi_extra=_UPLOAD_BODY,
    summary="Read the digits in an uploaded image (multipart field 'file' or a raw image body)",
)
async def predict_upload(request: Request) -> Response:
    context = context_of(request)  # not a ContextDep: see context_of
    data = await read_upload(request, context.settings.max_upload_bytes, context.receiving)
    started = time.perf_counter()
    if (header := small_picture_header(data, INLINE_MAX_PIXELS)) is not None:
        # A picture no larger than a model input (an MNIST file) is read right on the event
        # loop, the model included (~0.3 ms in all): any hand-over to another thread costs
        # more. Handing just the model to a thread of its own, so that the loop went on with
        # other uploads meanwhile, took more CPU than it saved: Python's lock then changed
        # hands around every OpenCV call of the other uploads (with gc.freeze, see app.py:
        # `python -m bench.http_ceiling --before 9ff0509` at 8 connections, 2,567 against
        # 2,208 req/s and 390 against 538 µs of CPU a request).
        reading, capture_ms = _decode_and_read(context, data, header)
    else:
        # Decoding and reading share one worker-thread hop (each costs ~0.2 ms of loop time).
        reading, capture_ms = await anyio.to_thread.run_sync(
            _decode_and_read_within_budget, context, data, limiter=context.cpu_limiter
        )
    return _respond(request, _answer(context, reading, "upload", capture_ms, started))

