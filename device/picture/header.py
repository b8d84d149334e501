"""The declared size of a PNG or JPEG, and whether it is grey, from its first bytes, without
decoding a pixel.

Nearly every upload is one of these two, so they get a parser of a few dozen lines: a PNG names
its size in the IHDR chunk that must come first, a JPEG in its start-of-frame marker, which
precedes the compressed data. Anything else (BMP, WebP, TIFF, PNM) is left to Pillow's header
reader, which the service then imports only when such an image arrives.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# PNG colour types 4 (grey + alpha) and 6 (RGBA) carry alpha; a tRNS chunk adds it to the others.
_PNG_ALPHA_TYPES = {4, 6}
_PNG_GRAY = 0
# Start-of-frame markers of every JPEG process (baseline, progressive, lossless, arithmetic);
# C4 (Huffman tables), C8 (reserved) and CC (arithmetic conditioning) are not frames.
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers that stand alone, without a length: TEM and the restart markers RST0..RST7.
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_JPEG_START_OF_SCAN = 0xDA


class DamagedHeaderError(ValueError):
    """The bytes start like a PNG or JPEG but their header is cut short or inconsistent."""


def _damaged(image_format: str, why: str) -> DamagedHeaderError:
    return DamagedHeaderError(f"the {image_format} image's header is damaged ({why})")


@dataclass(frozen=True)
class ImageHeader:
    format: str  # "PNG" or "JPEG", as Pillow names them
    width: int
    height: int
    has_alpha: bool
    gray: bool = False  # one grey channel, no alpha: decoded as grey, with no colour pass


def read_header(data: bytes) -> ImageHeader | None:
    """The header of a PNG or JPEG; None for other formats. Raises DamagedHeaderError."""
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data.startswith(JPEG_SIGNATURE):
        return _jpeg(data)
    return None


def _png(data: bytes) -> ImageHeader:
    offset = len(PNG_SIGNATURE)
    width = height = colour_type = None
    transparency = False
    # Walk the chunks up to the pixel data: IHDR first, then possibly tRNS (transparency).
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        body = offset + 8
        if kind == b"IHDR":
            if length != 13 or body + 13 > len(data):
                raise _damaged("PNG", "IHDR cut short")
            width, height, _, colour_type = struct.unpack_from(">IIBB", data, body)
        elif width is None:
            raise _damaged("PNG", "IHDR is not first")
        elif kind == b"tRNS":
            transparency = True
        elif kind in (b"IDAT", b"IEND"):
            has_alpha = transparency or colour_type in _PNG_ALPHA_TYPES
            gray = colour_type == _PNG_GRAY and not transparency
            return ImageHeader("PNG", width, height, has_alpha, gray)
        offset = body + length + 4  # data and CRC
    raise _damaged("PNG", "it ends before the pixel data")


def _jpeg(data: bytes) -> ImageHeader:
    offset = 2  # after SOI
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            raise _damaged("JPEG", "a marker is missing")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if marker in _JPEG_STANDALONE:
            offset += 2
            continue
        (length,) = struct.unpack_from(">H", data, offset + 2)
        if marker in _JPEG_FRAMES:
            if length < 8 or offset + 10 > len(data):
                raise _damaged("JPEG", "frame header cut short")
            height, width, components = struct.unpack_from(">HHB", data, offset + 5)
            return ImageHeader("JPEG", width, height, has_alpha=False, gray=components == 1)
        if marker == _JPEG_START_OF_SCAN or length < 2:
            break
        offset += 2 + length
    raise _damaged("JPEG", "no frame header before the data")
