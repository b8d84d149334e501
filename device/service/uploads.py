"""Receiving an uploaded image: a bounded read of the body, then a guarded decode.

The body is read chunk by chunk and abandoned the moment it passes the limit, so an oversized
upload costs at most `limit` bytes of memory. Multipart bodies go through python-multipart's
streaming parser, keeping only the `file` field. Decoding is `device.picture`'s, as for a file
on the command line (the header first, so an image that declares too many pixels is refused
before it costs memory); its refusals become the client's 4xx errors here. Pictures decoded at
once share a budget of pixels (PixelBudget), so large ones cannot together exhaust memory.
"""

from __future__ import annotations

import binascii
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from device.picture import (
    Decoded,
    ImageHeader,
    PictureError,
    decode_for_reading,
    looks_like,
    picture_header,
)
from device.service.errors import ServiceError

UPLOAD_FIELD = "file"
HOW_TO_UPLOAD = (
    "an image (PNG, JPEG, HEIC, BMP, WebP, TIFF, PNM, GIF or AVIF) as multipart field 'file' "
    "(curl -F file=@digit.png) or as the raw body with Content-Type image/* "
    "(curl --data-binary @digit.png -H 'Content-Type: image/png')"
)
RAW_CONTENT_TYPES = {b"application/octet-stream"}
SEND_THE_FILE = (
    "the image file's own bytes, not text: curl --data-binary @digit.png -H 'Content-Type: "
    "image/png' or curl -F file=@digit.png (base64 -d digit.b64 > digit.png turns base64 text "
    "back into the file)"
)


def _too_large(limit: int) -> ServiceError:
    return ServiceError(
        413,
        "upload_too_large",
        f"the request body is larger than the limit of {limit} bytes",
        f"an image of at most {limit} bytes (the server's DIGITS_MAX_UPLOAD_BYTES)",
    )


def _bad_request(code: str, detail: str, status: int = 400) -> ServiceError:
    return ServiceError(status, code, detail, HOW_TO_UPLOAD)


class ReceivingBudget:
    """Bytes of upload bodies being received at once, over all requests. Each body is held
    whole until it has all arrived, so thirty clients that sent all but the last byte of an
    8 MB upload held 250 MB (the systemd unit's cap is 400 MB); past this budget a body is
    answered 503 at once, to be sent again a moment later. Counted on the event loop, where
    every body is received: no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def busy(self) -> ServiceError:
        return ServiceError(
            503, "busy", f"the server is receiving {self.held} bytes of other uploads, its "
            f"limit at once ({self.limit} bytes)", "the same upload again in a moment",
            headers={"Retry-After": "1"})


async def _bounded_chunks(request: Request, limit: int, receiving: ReceivingBudget
                          ) -> AsyncIterator[bytes]:
    """The body's chunks; raises 413 as soon as more than `limit` bytes have arrived, and 503
    when they would take the bodies being received past their budget."""
    received = counted = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            if receiving.held + len(chunk) > receiving.limit:
                raise receiving.busy()
            receiving.held += len(chunk)
            counted += len(chunk)
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise _bad_request("client_disconnected", "the client went away mid-upload") from None
    finally:
        receiving.held -= counted


async def _read_raw(request: Request, limit: int, receiving: ReceivingBudget) -> bytes:
    async with aclosing(_bounded_chunks(request, limit, receiving)) as chunks:
        return b"".join([chunk async for chunk in chunks])


class _FileFieldCollector:
    """python-multipart callbacks that keep the data of the first `file` field only."""

    def __init__(self) -> None:
        self.header_field = b""
        self.header_value = b""
        self.in_file_part = False
        self.found = False
        self.finished = False
        self.parts: list[bytes] = []

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self._append_field(data[start:end]),
            "on_header_value": lambda data, start, end: self._append_value(data[start:end]),
            "on_header_end": self.on_header_end,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def _append_field(self, data: bytes) -> None:
        self.header_field += data

    def _append_value(self, data: bytes) -> None:
        self.header_value += data

    def on_part_begin(self) -> None:
        self.in_file_part = False

    def on_header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            _, options = parse_options_header(self.header_value)
            self.in_file_part = not self.found and options.get(b"name") == UPLOAD_FIELD.encode()
        self.header_field = b""
        self.header_value = b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file_part:
            self.parts.append(data[start:end])

    def on_part_end(self) -> None:
        if self.in_file_part:
            self.found = True
            self.in_file_part = False

    def on_end(self) -> None:
        self.finished = True


async def _read_multipart(request: Request, params: dict[bytes, bytes], limit: int,
                          receiving: ReceivingBudget) -> bytes:
    boundary = params.get(b"boundary")
    if not boundary:
        raise _bad_request("malformed_multipart", "the multipart Content-Type has no boundary")
    collector = _FileFieldCollector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        async with aclosing(_bounded_chunks(request, limit, receiving)) as chunks:
            async for chunk in chunks:
                parser.write(chunk)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise _bad_request(
            "malformed_multipart", f"the multipart body is malformed: {exc}"
        ) from None
    if not collector.found:
        detail = (
            f"the multipart body has no field '{UPLOAD_FIELD}'"
            if collector.finished
            else "the multipart body ended before its closing boundary"
        )
        raise _bad_request(
            "missing_file_field" if collector.finished else "malformed_multipart",
            detail,
            status=422 if collector.finished else 400,
        )
    return b"".join(collector.parts)


def _refuse_content_encoding(header: str | None) -> None:
    """415 for a body sent compressed (Content-Encoding gzip, deflate, br...). Not decoded on
    purpose: a few KB of gzip can unpack to gigabytes, past every upload limit (a zip bomb)."""
    if header is None:
        return
    codings = [c for c in (part.strip().lower() for part in header.split(","))
               if c not in ("", "identity")]
    if codings:
        raise ServiceError(
            415, "unsupported_content_encoding",
            f"the body was sent with Content-Encoding {', '.join(codings)}; the service does "
            "not decompress uploads", f"the image bytes sent unencoded (no Content-Encoding "
            f"header): {HOW_TO_UPLOAD}", headers={"Accept-Encoding": "identity"})


async def read_upload(request: Request, limit: int, receiving: ReceivingBudget) -> bytes:
    """The uploaded image's bytes, from a multipart `file` field or a raw image/* body (at most
    `limit` of them, within what `receiving` leaves)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _bad_request("bad_content_length", f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    # Before the body is read: a header lookup (~0.6 µs), so refused without costing memory.
    _refuse_content_encoding(request.headers.get("content-encoding"))
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    content_type = content_type.lower()
    if content_type == b"multipart/form-data":
        data = await _read_multipart(request, params, limit, receiving)
    elif content_type.startswith(b"image/") or content_type in RAW_CONTENT_TYPES:
        data = await _read_raw(request, limit, receiving)
    else:
        shown = content_type.decode("latin-1") or "none"
        raise _bad_request("unsupported_media_type", f"Content-Type {shown} is not an image", 415)
    if not data:
        raise _bad_request("empty_upload", "the uploaded image is empty (0 bytes)")
    return data


# What each of device.picture's refusals is, as an HTTP status.
_PICTURE_STATUS = {"not_an_image": 415, "unsupported_image_format": 415, "corrupt_image": 400,
                   "image_too_large": 413}


def _image_as_text(data: bytes) -> str | None:
    """What a body that is no image is, when it is an image written as text: a data: URL, or
    base64 whose first bytes decode to an image signature; None otherwise. Asked only once the
    decoder has refused the body, and reads its first 64 bytes at most."""
    head = data[:64].lstrip()
    if head[:5].lower() == b"data:":
        return ("the upload is a data: URL (an image written as text, usually base64), not the "
                "image's bytes")
    try:
        # 16 base64 characters are 12 bytes: as many as looks_like needs for any format.
        kind = looks_like(binascii.a2b_base64(head[:16], strict_mode=True))
    except binascii.Error:
        return None
    return None if kind is None else (
        f"the upload looks like base64 text of a {kind} image, not the image's bytes")


@contextmanager
def _refusals_as_client_errors(data: bytes, max_pixels: int) -> Iterator[None]:
    """device.picture's refusals as the client's errors, with what would have worked."""
    try:
        yield
    except PictureError as exc:
        if exc.code == "not_an_image" and (as_text := _image_as_text(data)) is not None:
            raise ServiceError(415, "image_as_text", as_text, SEND_THE_FILE) from None
        expected = (f"an image of at most {max_pixels} pixels (DIGITS_MAX_IMAGE_PIXELS)"
                    if exc.code == "image_too_large" else HOW_TO_UPLOAD)
        raise ServiceError(_PICTURE_STATUS[exc.code], exc.code, exc.detail, expected) from None


def upload_header(data: bytes, max_pixels: int) -> ImageHeader:
    """The upload's header, read before any pixel is decoded (`device.picture.picture_header`);
    its refusals as the client's errors."""
    with _refusals_as_client_errors(data, max_pixels):
        return picture_header(data, max_pixels)


def decode_upload(data: bytes, max_pixels: int, least_side: int | None = None,
                  header: ImageHeader | None = None) -> Decoded:
    """The upload's picture, no larger than ``least_side`` needs
    (`device.picture.decode_for_reading`); its refusals as the client's errors."""
    with _refusals_as_client_errors(data, max_pixels):
        return decode_for_reading(data, max_pixels, least_side, header)


class PixelBudget:
    """How many decoded pixels may be in memory at once: a picture waits (in its worker
    thread) until those being decoded and read leave room for it. Decoding and reading take
    ~6 bytes a pixel, so two 40-megapixel PNGs of 150 KB each, read at once, took the service
    from 93 to 525 MB, past the systemd unit's 400 MB cap (which kills it, and every request
    in flight); one at a time, 327 MB. A picture larger than the whole budget waits for the
    others to finish and is then read alone. A waiting picture holds its worker thread (the
    service has two, context.CPU_WORKERS): while one large picture is read and another waits,
    other uploads and camera readings wait too, for at most that one read (~0.8 s here for
    40 megapixels)."""

    def __init__(self, pixels: int) -> None:
        self.pixels = pixels
        self._free = pixels
        self._changed = threading.Condition()

    @contextmanager
    def room_for(self, pixels: int) -> Iterator[None]:
        pixels = min(pixels, self.pixels)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= pixels)
            self._free -= pixels
        try:
            yield
        finally:
            with self._changed:
                self._free += pixels
                self._changed.notify_all()
