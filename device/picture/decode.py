"""An image file's bytes → the frame the reader takes, for uploads and files alike.

The header is read first (PNG and JPEG by `device.picture.header`, the rarer formats by Pillow;
neither allocates anything for pixels) and an image that declares more pixels than the limit is
refused before it costs memory. OpenCV decodes the formats it reads; Pillow the few it does not
(GIF, AVIF, and HEIC through the pi-heif plug-in) and a TIFF with alpha (OpenCV drops a grey
one's). Transparent pixels become the ground of what is drawn (white paper under dark strokes,
black under light ones), 16-bit pixels 8-bit, and a grey image stays grey, so a drawing app's
export reads like a scan whether it was uploaded or named on the command line. For reading, a
large JPEG decodes no larger than the reader needs (decode_for_reading).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.picture.header import DamagedHeaderError, ImageHeader, read_header

# What OpenCV's imdecode reads, and what Pillow decodes for it; Pillow names them while reading
# the header. A WebP is Pillow's: OpenCV never turns one upright by its EXIF orientation.
OPENCV_FORMATS = frozenset({"PNG", "JPEG", "BMP", "TIFF", "PPM"})
PILLOW_FORMATS = frozenset({"GIF", "AVIF", "HEIF", "WEBP"})
# Pillow plug-ins that read HEIC (libheif): pi-heif is the decode-only one the device extra
# installs; pillow-heif, its full sibling, reads the same where a user has it instead.
HEIF_PLUGINS = ("pi_heif", "pillow_heif")
# Pillow's modes of one grey channel (bilevel, 8, 16 and 32 bits).
_PILLOW_GRAY_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L"}
_PILLOW_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}
# A picture transparent over this share of it is a canvas: what is opaque is what was drawn.
CANVAS_SHARE = 0.5

_SIGNATURES = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
# ISO base media files (HEIF and AVIF) name their kind in the `ftyp` box's brand.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
# What to do instead, for formats a phone may well send but this installation cannot read.
_INSTEAD = {
    "HEIC": "HEIC photos (an iPhone camera's default) need the pi-heif package, which this "
            "installation lacks: `pip install pi-heif` in the service's environment, or send a "
            "JPEG or PNG (Settings > Camera > Formats > Most Compatible makes an iPhone take "
            "JPEGs)",
    "AVIF": "this installation's Pillow cannot read AVIF: upgrade it (pip install -U pillow) "
            "or send a JPEG or PNG",
}


# libjpeg decodes a JPEG at 1/2, 1/4 or 1/8 of its size by scaling its DCT blocks: a phone's
# 12-megapixel photo in ~a quarter of the time and a sixteenth of the memory.
JPEG_SHRINKS = (8, 4, 2)
_OPENCV_SHRUNK = {  # (colour, grey) flags of each shrink
    2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
    4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
}


@dataclass(frozen=True)
class Decoded:
    """A picture decoded for reading: ``frame`` is it ``shrink`` times smaller than the file's
    (1: as large), ``size`` the upright picture's own (height, width), for mapping back."""

    frame: np.ndarray
    shrink: int
    size: tuple[int, int]


class PictureError(ValueError):
    """Bytes that give no picture. ``code``: not_an_image, corrupt_image,
    unsupported_image_format or image_too_large; ``detail`` says what was wrong."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def looks_like(data: bytes) -> str | None:
    """The format an image's first bytes announce, to tell 'damaged' from 'not an image'."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIC"
    return next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)


@functools.cache
def heif_readable() -> bool:
    """Whether Pillow reads HEIC here: registers the first HEIF plug-in installed, once.

    Registered only when a HEIC arrives, so a service that never sees one never loads libheif.
    The plug-in turns the picture upright by its own transform boxes (irot, imir) and resets
    the EXIF orientation it carries, so Pillow's EXIF transpose turns nothing twice.
    """
    for name in HEIF_PLUGINS:
        try:
            importlib.import_module(name).register_heif_opener()
        except ImportError:
            continue
        return True
    return False


def small_picture_header(data: bytes, pixels: int) -> ImageHeader | None:
    """The header of a PNG or JPEG that declares at most ``pixels`` pixels, for
    decode_for_reading to use rather than read again; None for anything else, or a damaged
    header: those take the ordinary path and its errors."""
    try:
        header = read_header(data)
    except DamagedHeaderError:
        return None
    return header if header is not None and 0 < header.width * header.height <= pixels else None


def _too_many_pixels(declared: str, max_pixels: int) -> PictureError:
    return PictureError("image_too_large", f"the image declares {declared}, more than the limit "
                                           f"of {max_pixels / 1e6:.1f} megapixels")


def _header_of(data: bytes, max_pixels: int) -> ImageHeader:
    """Format, declared size and transparency, from the header alone."""
    try:
        header = read_header(data)
    except DamagedHeaderError as exc:
        raise PictureError("corrupt_image", str(exc)) from None
    return header or _pillow_header(data, max_pixels)


def _pillow_header(data: bytes, max_pixels: int) -> ImageHeader:
    """The header of an image other than PNG or JPEG, read by Pillow."""
    # Imported here: most services never see such an image, and Pillow costs ~2 MiB resident.
    from PIL import Image, UnidentifiedImageError

    if looks_like(data) == "HEIC":
        heif_readable()
    try:
        with warnings.catch_warnings():
            # The caller applies its own, lower pixel limit; Pillow's warning would be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # OpenCV reads 8- and 16-bit TIFFs, not 32-bit (Pillow's "I" is also a 16-bit
                # PGM's mode, which OpenCV reads).
                if image.format == "TIFF" and image.mode in ("F", "I"):
                    raise PictureError(
                        "unsupported_image_format", f"{image.format} images of 32-bit samples "
                        "are not supported; save it with 8 or 16 bits a sample")
                has_alpha = image.mode in _PILLOW_ALPHA_MODES or "transparency" in image.info
                gray = image.mode in _PILLOW_GRAY_MODES and not has_alpha
                return ImageHeader(image.format or "", image.width, image.height, has_alpha, gray)
    except Image.DecompressionBombError as exc:
        # Pillow's own (higher) limit tripped while reading the header; say it in our terms.
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(declared.group(1)) / 1e6:.1f} megapixels" if declared else "too many pixels"
        raise _too_many_pixels(size, max_pixels) from None
    except UnidentifiedImageError:
        kind = looks_like(data)
        if kind in _INSTEAD and not _pillow_reads(kind):
            raise PictureError("unsupported_image_format", _INSTEAD[kind]) from None
        if kind:
            raise PictureError("corrupt_image", f"the {kind} image's header is damaged") from None
        raise PictureError("not_an_image", "not an image") from None
    except PictureError:
        raise
    except Exception as exc:  # Pillow's plug-ins raise many types on a damaged header
        raise PictureError("corrupt_image", f"the image header is damaged ({exc})") from None


def _pillow_reads(kind: str) -> bool:
    """Whether this installation reads a HEIC or an AVIF at all: if it does, one it could not
    identify is damaged, not unsupported."""
    from PIL import features

    return heif_readable() if kind == "HEIC" else bool(features.check("avif"))


def _to_bgr_on_its_ground(image: np.ndarray) -> np.ndarray:
    """8-bit grey or BGR, transparent pixels laid on the ground of what is drawn
    (_transparent_ground)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        color = image[:, :, :3].astype(np.float32)
        ground = _transparent_ground(image)
        return (color * alpha + ground * (1.0 - alpha)).astype(np.uint8)
    return image[:, :, :3]


def _transparent_ground(bgra: np.ndarray) -> float:
    """The shade transparent pixels become: white paper, as under a drawing app's dark strokes,
    unless the picture is mostly transparent (a canvas, not a photo with clear corners) and
    what is drawn on it is light (a white pen on a clear layer): then black, or the strokes
    would vanish into the paper. Alpha's own shape cannot say which: it is the strokes'
    shape in both."""
    alpha = bgra[:, :, 3]
    if np.count_nonzero(alpha < 128) < CANVAS_SHARE * alpha.size:
        return 255.0
    drawn = float(alpha.sum(dtype=np.float64))
    if drawn == 0.0:
        return 255.0
    shade = cv2.cvtColor(bgra[:, :, :3], cv2.COLOR_BGR2GRAY)
    return 0.0 if float((shade * alpha.astype(np.float64)).sum()) / drawn > 127.5 else 255.0


def shrink_for(header: ImageHeader, least_side: int | None) -> int:
    """How many times smaller to decode a picture whose longer side need only be
    ``least_side``: the most of JPEG_SHRINKS that keeps it, for a JPEG; 1 otherwise."""
    if least_side is None or header.format != "JPEG" or header.has_alpha:
        return 1
    longer = max(header.width, header.height)
    return next((shrink for shrink in JPEG_SHRINKS if longer // shrink >= least_side), 1)


def _opencv_decode(data: bytes, header: ImageHeader, shrink: int = 1) -> np.ndarray:
    # IMREAD_COLOR and IMREAD_GRAYSCALE (and their REDUCED kin) apply a JPEG's EXIF
    # orientation; only images with alpha need UNCHANGED. A grey image stays grey (an MNIST
    # file): no colour pass and back.
    if header.has_alpha:
        flags = cv2.IMREAD_UNCHANGED
    elif shrink > 1:
        flags = _OPENCV_SHRUNK[shrink][1 if header.gray else 0]
    else:
        flags = cv2.IMREAD_GRAYSCALE if header.gray else cv2.IMREAD_COLOR
    try:
        frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise PictureError("corrupt_image", f"the image could not be decoded ({exc.err})") from None
    if frame is None or frame.size == 0:
        raise PictureError("corrupt_image", f"the {header.format} image could not be decoded "
                                            "(truncated or damaged)")
    return frame


def _pillow_decode(data: bytes, header: ImageHeader) -> np.ndarray:
    """A GIF's first frame, an AVIF, a HEIC or a TIFF with alpha, upright, as OpenCV would give
    it (grey, BGR or BGRA)."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked already
            with Image.open(io.BytesIO(data)) as image:
                upright = ImageOps.exif_transpose(image)
                mode = "RGBA" if header.has_alpha else "L" if header.gray else "RGB"
                pixels = np.asarray(upright.convert(mode))
    except Exception as exc:  # Pillow's plug-ins raise many types on damaged data
        raise PictureError(
            "corrupt_image", f"the {header.format} image could not be decoded ({exc})"
        ) from None
    if pixels.ndim == 2:
        return pixels
    return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if mode == "RGBA" else cv2.COLOR_RGB2BGR)


def picture_header(data: bytes, max_pixels: int, header: ImageHeader | None = None
                   ) -> ImageHeader:
    """The header of a picture this device can decode, declaring at most ``max_pixels``
    pixels (read from ``data`` unless given); PictureError otherwise."""
    header = header or _header_of(data, max_pixels)
    if header.format not in OPENCV_FORMATS | PILLOW_FORMATS:
        raise PictureError(
            "unsupported_image_format", f"{header.format or 'this'} images are not supported"
        )
    width, height = header.width, header.height
    if width <= 0 or height <= 0:
        raise PictureError("corrupt_image", f"the image declares a size of {width}×{height}")
    if width * height > max_pixels:
        raise _too_many_pixels(
            f"{width}×{height} = {width * height / 1e6:.1f} megapixels", max_pixels)
    return header


def _decoding(header: ImageHeader, least_side: int | None) -> tuple[bool, int]:
    """Whether Pillow decodes the picture (else OpenCV), and how many times smaller."""
    # With the alpha kept (IMREAD_UNCHANGED) OpenCV ignores the EXIF orientation, and it drops
    # the alpha of a grey TIFF with alpha, leaving its hidden colour alone (one shade, no
    # digit); Pillow turns every picture upright and keeps every alpha. (A BMP has no EXIF.)
    by_pillow = header.format not in OPENCV_FORMATS or (header.has_alpha
                                                         and header.format != "BMP")
    return by_pillow, 1 if by_pillow else shrink_for(header, least_side)


def decoded_pixels(header: ImageHeader, least_side: int | None = None) -> int:
    """How many pixels decode_for_reading will decode the picture into: what its memory
    scales with (a 40-megapixel PNG takes ~240 MB to decode and read)."""
    _, shrink = _decoding(header, least_side)
    return -(-header.width // shrink) * -(-header.height // shrink)


def decode_for_reading(data: bytes, max_pixels: int, least_side: int | None = None,
                       header: ImageHeader | None = None) -> Decoded:
    """The picture, its frame (H,W) gray or (H,W,3) BGR uint8, no larger than a reader needs:
    a JPEG whose longer side is over ``least_side`` twice or more decodes smaller
    (shrink_for); anything else, or with no ``least_side``, as it is. PictureError when the
    bytes are no picture. ``header``: the image's header when the caller has read it already."""
    header = picture_header(data, max_pixels, header)
    width, height = header.width, header.height
    by_pillow, shrink = _decoding(header, least_side)
    frame = _pillow_decode(data, header) if by_pillow else _opencv_decode(data, header, shrink)
    if frame.dtype not in (np.uint8, np.uint16):
        raise PictureError("unsupported_image_format", f"{frame.dtype} pixels are not supported")
    frame = _to_bgr_on_its_ground(frame)
    if shrink == 1:
        return Decoded(frame, 1, frame.shape[:2])
    # A shrunk JPEG is ceil(side / shrink) on each side; it stands upright as the file's EXIF
    # orientation says, so its width came from the file's width or, turned, from its height.
    # Where both sides shrink to the same length the two cannot be told apart, and either
    # answer is within shrink px of the truth: the size only clamps boxes to the picture.
    turned = frame.shape[1] != -(-width // shrink)
    return Decoded(frame, shrink, (width, height) if turned else (height, width))


@dataclass(frozen=True)
class PixelLimit:
    """The most pixels a picture file may declare, and the setting that raises it: a refusal
    names the one its command reads (the service's is DIGITS_MAX_IMAGE_PIXELS). ``room_for``:
    a budget of decoded pixels shared with whatever else decodes at once (the service's
    uploads.PixelBudget.room_for), which a picture waits for room in before it is decoded."""

    pixels: int
    setting: str
    room_for: Callable[[int], AbstractContextManager[object]] | None = None

    def room(self, pixels: int) -> AbstractContextManager[object]:
        return self.room_for(pixels) if self.room_for is not None else contextlib.nullcontext()


def file_pixel_limit() -> PixelLimit:
    """The limit of files read outside the service (predict, capture): OpenCV's own, as when
    OpenCV read files itself (OPENCV_IO_MAX_IMAGE_PIXELS, 2^30 unless set)."""
    try:
        pixels = max(1, int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", "")))
    except ValueError:
        pixels = 1 << 30
    return PixelLimit(pixels, "OPENCV_IO_MAX_IMAGE_PIXELS")


def read_picture(path: str | Path, least_side: int | None = None,
                 limit: PixelLimit | None = None) -> np.ndarray:
    """The picture in an image file as a frame, decoded as an upload is; PictureError when it
    gives none (``unreadable_file`` when the file itself cannot be read); ``limit``: as for
    read_picture_for_reading, its room had while the picture is at full size.

    With ``least_side`` it is no larger than a reader needs: decoded smaller where the format
    allows (decode_for_reading), then shrunk by area until its longer side is ``least_side``.
    A frame carries no shrink to map boxes back by, so what is read in it is in its own pixels;
    a camera that held a 40-megapixel PNG's frame at full size (the preview's, the reading's
    and the next one's at once) took the service past its memory cap."""
    limit = limit or file_pixel_limit()
    data = _file_bytes(path)
    with _naming_the_setting(limit):
        header = picture_header(data, limit.pixels)
        with limit.room(decoded_pixels(header, least_side)):
            frame = decode_for_reading(data, limit.pixels, least_side, header).frame
            longer = max(frame.shape[:2])
            if least_side is None or longer <= least_side:
                return frame
            height, width = frame.shape[:2]
            scale = least_side / longer
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def read_picture_for_reading(path: str | Path, least_side: int | None,
                             limit: PixelLimit | None = None) -> Decoded:
    """The picture in an image file, no larger than ``least_side`` needs (decode_for_reading),
    declaring no more pixels than ``limit`` (file_pixel_limit() unless given)."""
    limit = limit or file_pixel_limit()
    data = _file_bytes(path)
    with _naming_the_setting(limit):
        return decode_for_reading(data, limit.pixels, least_side)


def _file_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise PictureError("unreadable_file", f"cannot read it ({exc.strerror})") from None


@contextlib.contextmanager
def _naming_the_setting(limit: PixelLimit) -> Iterator[None]:
    """A picture over the limit is refused with the setting that raises it."""
    try:
        yield
    except PictureError as exc:
        if exc.code != "image_too_large":
            raise
        raise PictureError(exc.code, f"{exc.detail} ({limit.setting} raises it)") from None
