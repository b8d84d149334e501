"""Receiving an uploaded image: a bounded read of the body, then a guarded decode.

The body is read chunk by chunk and abandoned the moment it passes the limit, so an oversized
upload costs at most `limit` bytes of memory. Multipart bodies go through python-multipart's
streaming parser, keeping only the `file` field. Decoding first reads the image's header (PNG and
JPEG by `image_header`, the rarer formats by Pillow; neither allocates anything for pixels) and
refuses images that declare more pixels than the limit, then decodes with OpenCV.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import AsyncIterator

import cv2
import numpy as np
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from device.service.errors import ServiceError
from device.service.image_header import DamagedHeaderError, ImageHeader, read_header

UPLOAD_FIELD = "file"
HOW_TO_UPLOAD = (
    "an image (PNG, JPEG, BMP, WebP, TIFF or PNM) as multipart field 'file' "
    "(curl -F file=@digit.png) or as the raw body with Content-Type image/* "
    "(curl --data-binary @digit.png -H 'Content-Type: image/png')"
)
# What OpenCV's imdecode reads; Pillow names them while reading the header.
DECODABLE_FORMATS = {"PNG", "JPEG", "BMP", "WEBP", "TIFF", "PPM"}
RAW_CONTENT_TYPES = {b"application/octet-stream"}
# Pillow's modes of one grey channel (bilevel, 8, 16 and 32 bits).
_PILLOW_GRAY_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L"}


def _too_large(limit: int) -> ServiceError:
    return ServiceError(
        413,
        "upload_too_large",
        f"the request body is larger than the limit of {limit} bytes",
        f"an image of at most {limit} bytes (the server's DIGITS_MAX_UPLOAD_BYTES)",
    )


def _bad_request(code: str, detail: str, status: int = 400) -> ServiceError:
    return ServiceError(status, code, detail, HOW_TO_UPLOAD)


async def _bounded_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks; raises 413 as soon as more than `limit` bytes have arrived."""
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise _bad_request("client_disconnected", "the client went away mid-upload") from None


async def _read_raw(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in _bounded_chunks(request, limit)])


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


async def _read_multipart(request: Request, params: dict[bytes, bytes], limit: int) -> bytes:
    boundary = params.get(b"boundary")
    if not boundary:
        raise _bad_request("malformed_multipart", "the multipart Content-Type has no boundary")
    collector = _FileFieldCollector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        async for chunk in _bounded_chunks(request, limit):
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


async def read_upload(request: Request, limit: int) -> bytes:
    """The uploaded image's bytes, from a multipart `file` field or a raw image/* body."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _bad_request("bad_content_length", f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    content_type = content_type.lower()
    if content_type == b"multipart/form-data":
        data = await _read_multipart(request, params, limit)
    elif content_type.startswith(b"image/") or content_type in RAW_CONTENT_TYPES:
        data = await _read_raw(request, limit)
    else:
        shown = content_type.decode("latin-1") or "none"
        raise _bad_request("unsupported_media_type", f"Content-Type {shown} is not an image", 415)
    if not data:
        raise _bad_request("empty_upload", "the uploaded image is empty (0 bytes)")
    return data


_SIGNATURES = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _looks_like(data: bytes) -> str | None:
    """The format an upload's first bytes announce, to tell 'damaged' from 'not an image'."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)


def _too_many_pixels(detail: str, max_pixels: int) -> ServiceError:
    expected = f"an image of at most {max_pixels} pixels (DIGITS_MAX_IMAGE_PIXELS)"
    return ServiceError(413, "image_too_large", detail, expected)


def tiny_image_header(data: bytes, pixels: int) -> ImageHeader | None:
    """The header of a PNG or JPEG that declares at most ``pixels`` pixels, for decode_image
    to use rather than read again; None for anything else, or a damaged header: those take the
    ordinary path and its errors."""
    try:
        header = read_header(data)
    except DamagedHeaderError:
        return None
    return header if header is not None and 0 < header.width * header.height <= pixels else None


def _header_of(data: bytes, max_pixels: int) -> ImageHeader:
    """Format, declared size and transparency, from the header alone."""
    try:
        header = read_header(data)
    except DamagedHeaderError as exc:
        raise _bad_request("corrupt_image", str(exc)) from None
    return header or _pillow_header(data, max_pixels)


def _pillow_header(data: bytes, max_pixels: int) -> ImageHeader:
    """The header of an image other than PNG or JPEG, read by Pillow."""
    # Imported here: most services never see such an image, and Pillow costs ~2 MiB resident.
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # We apply our own, lower pixel limit below; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                has_alpha = image.mode in {"RGBA", "LA", "PA", "La", "RGBa"} or (
                    "transparency" in image.info
                )
                gray = image.mode in _PILLOW_GRAY_MODES and not has_alpha
                return ImageHeader(image.format or "", image.width, image.height, has_alpha, gray)
    except Image.DecompressionBombError as exc:
        # Pillow's own (higher) limit tripped while reading the header; say it in our terms.
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(declared.group(1)) / 1e6:.1f} megapixels" if declared else "too many pixels"
        raise _too_many_pixels(
            f"the image declares {size}, more than the limit of {max_pixels / 1e6:.1f}", max_pixels
        ) from None
    except UnidentifiedImageError:
        kind = _looks_like(data)
        if kind:
            raise _bad_request("corrupt_image", f"the {kind} image's header is damaged") from None
        raise _bad_request("not_an_image", "the upload is not an image", 415) from None
    except Exception as exc:  # Pillow's plug-ins raise many types on a damaged header
        raise _bad_request("corrupt_image", f"the image header is damaged ({exc})") from None


def _to_bgr_over_white(image: np.ndarray) -> np.ndarray:
    """Transparent pixels become white paper, so a dark digit on a transparent canvas reads."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        color = image[:, :, :3].astype(np.float32)
        return (color * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return image[:, :, :3]


def decode_image(data: bytes, max_pixels: int, header: ImageHeader | None = None) -> np.ndarray:
    """A (H,W) gray or (H,W,3) BGR uint8 frame; ServiceError when the bytes are not one.
    ``header``: the image's header when the caller has read it already."""
    header = header or _header_of(data, max_pixels)
    if header.format not in DECODABLE_FORMATS:
        raise _bad_request(
            "unsupported_image_format", f"{header.format or 'this'} images are not supported", 415
        )
    width, height = header.width, header.height
    if width <= 0 or height <= 0:
        raise _bad_request("corrupt_image", f"the image declares a size of {width}×{height}")
    if width * height > max_pixels:
        raise _too_many_pixels(
            f"the image declares {width}×{height} = {width * height / 1e6:.1f} megapixels, "
            f"more than the limit of {max_pixels / 1e6:.1f}",
            max_pixels,
        )
    # IMREAD_COLOR and IMREAD_GRAYSCALE apply a JPEG's EXIF orientation; only images with
    # alpha need UNCHANGED. A grey image stays grey (an MNIST file): no colour pass and back.
    if header.has_alpha:
        flags = cv2.IMREAD_UNCHANGED
    else:
        flags = cv2.IMREAD_GRAYSCALE if header.gray else cv2.IMREAD_COLOR
    try:
        frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise _bad_request("corrupt_image", f"the image could not be decoded ({exc.err})") from None
    if frame is None or frame.size == 0:
        raise _bad_request(
            "corrupt_image",
            f"the {header.format} image could not be decoded (truncated or damaged)",
        )
    if frame.dtype not in (np.uint8, np.uint16):
        raise _bad_request(
            "unsupported_image_format", f"{frame.dtype} pixels are not supported", 415
        )
    return _to_bgr_over_white(frame)
