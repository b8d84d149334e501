"""Decoding uploads: what a client can send, and what is refused before it costs memory."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
import threading
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from device.picture import decode_for_reading, small_picture_header
from device.picture.header import (
    JPEG_SIGNATURE,
    PNG_SIGNATURE,
    DamagedHeaderError,
    ImageHeader,
    read_header,
)
from device.service.errors import ServiceError
from device.service.uploads import PixelBudget, decode_upload
from tests.camera_like import heic_bytes
from tests.conftest import REPO

LIMIT = 40_000_000


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR declaring width×height, and a tiny IDAT: a decompression bomb
    as far as any decoder that trusts the header is concerned."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def decode_image(data: bytes, max_pixels: int, header: ImageHeader | None = None) -> np.ndarray:
    """The upload's picture at its full size, as the service decodes it."""
    return decode_upload(data, max_pixels, header=header).frame


def _error_at(data: bytes, max_pixels: int) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        decode_image(data, max_pixels)
    return caught.value


def _error(data: bytes) -> ServiceError:
    return _error_at(data, LIMIT)


def _pillow_writes(fmt: str) -> bool:
    from PIL import features

    return fmt != "AVIF" or bool(features.check("avif"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF", "AVIF"])
def test_common_formats_decode_to_the_same_picture(fmt: str) -> None:
    if not _pillow_writes(fmt):
        pytest.skip("this Pillow was built without AVIF, so it can neither write nor read one")
    picture = np.zeros((40, 60), np.uint8)
    picture[10:30, 20:40] = 255
    frame = decode_image(_encoded(Image.fromarray(picture), fmt), LIMIT)
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert gray.shape == (40, 60)
    assert np.abs(gray.astype(int) - picture).mean() < 8  # JPEG/WebP/AVIF are lossy


def test_a_transparent_gif_and_an_exif_turned_avif_read_as_drawn() -> None:
    # GIF and AVIF go through Pillow, not OpenCV: the same white paper and upright picture.
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[5:15, 10:12] = (0, 0, 0, 255)
    gif = decode_image(_encoded(Image.fromarray(rgba, "RGBA"), "GIF"), LIMIT)
    gray = gif if gif.ndim == 2 else cv2.cvtColor(gif, cv2.COLOR_BGR2GRAY)
    assert gray[0, 0] == 255 and gray[10, 10] == 0
    if not _pillow_writes("AVIF"):
        return
    tall = np.zeros((40, 20), np.uint8)
    tall[:10] = 255  # light at the top once upright
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: rotate 90° clockwise to show
    stored = Image.fromarray(np.rot90(tall, 1).copy()).convert("RGB")
    buffer = io.BytesIO()
    stored.save(buffer, "AVIF", exif=exif.tobytes(), quality=95)
    frame = decode_image(buffer.getvalue(), LIMIT)
    upright = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert upright.shape == (40, 20)
    assert upright[:10].mean() > 200 and upright[10:].mean() < 50


# What Pillow's transpose does to a stored picture for each EXIF orientation is undone by it
# (ImageOps.exif_transpose); stored = the inverse of each, so the file shows `upright`.
_STORED_FOR = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGBA"), ("PNG", "RGB"), ("WEBP", "RGB"),
                                           ("WEBP", "RGBA"), ("JPEG", "RGB")])
def test_every_exif_orientation_stands_upright_whatever_the_format(fmt: str, mode: str) -> None:
    """A PNG with alpha and every WebP once came out as stored: OpenCV ignores the EXIF
    orientation when it keeps the alpha, and always for a WebP."""
    upright = np.full((40, 60), 255, np.uint8)
    upright[:20, :30] = 0  # dark top-left quarter
    for orientation in range(1, 9):
        picture = Image.fromarray(upright).convert(mode)
        if orientation > 1:
            picture = picture.transpose(_STORED_FOR[orientation])
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        picture.save(buffer, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt != "PNG" else {}))
        frame = decode_image(buffer.getvalue(), LIMIT)
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        assert gray.shape == (40, 60), (orientation, gray.shape)
        assert gray[:20, :30].mean() < 50 and gray[20:, 30:].mean() > 200, orientation


def test_a_tiff_of_32_bit_samples_is_unsupported_not_damaged() -> None:
    for mode in ("F", "I"):
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((20, 20), np.float32)).convert(mode).save(buffer, "TIFF")
        with pytest.raises(ServiceError) as refused:
            decode_upload(buffer.getvalue(), LIMIT)
        assert refused.value.status == 415
        assert "32-bit samples are not supported" in refused.value.detail


def _heic(picture: np.ndarray, orientation: int = 1) -> bytes:
    """HEIC bytes as a phone writes them (camera_like.heic_bytes)."""
    pytest.importorskip(
        "pillow_heif", reason="pillow-heif (the dev extra) writes the tests' HEIC files")
    return heic_bytes(picture, orientation, quality=95)


def test_a_heic_photo_reads_upright() -> None:
    # An iPhone stores a portrait photo turned and says how to show it: upright, as a viewer shows.
    tall = np.zeros((64, 32), np.uint8)
    tall[:16] = 255  # light at the top once upright
    # 6: stored turned, rotate 90° clockwise to show
    frame = decode_image(_heic(np.rot90(tall, 1).copy(), 6), LIMIT)
    upright = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert upright.shape == (64, 32)
    assert upright[:14].mean() > 200 and upright[18:].mean() < 50


def test_a_heic_over_the_pixel_limit_is_refused_from_its_header() -> None:
    error = _error_at(_heic(np.full((300, 400), 255, np.uint8)), max_pixels=100_000)
    assert (error.status, error.code) == (413, "image_too_large")
    assert "400×300" in error.detail


def test_a_damaged_heic_is_400() -> None:
    # An ISO base media file whose brand says HEIC, as an iPhone's camera writes it, then nothing.
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    cut = _heic(np.full((48, 64), 255, np.uint8))
    for data in (heic, cut[: len(cut) // 2]):
        error = _error(data)
        assert (error.status, error.code) == (400, "corrupt_image"), error.detail


def test_without_a_heif_plug_in_a_heic_is_refused_with_what_to_do() -> None:
    # Where no pi-heif wheel exists (32-bit Raspberry Pi OS): a fresh interpreter that cannot
    # import either plug-in, since Pillow keeps a registered one for the life of a process.
    heic = _heic(np.full((48, 64), 255, np.uint8))
    script = (
        "import sys, json\n"
        "sys.modules['pi_heif'] = sys.modules['pillow_heif'] = None\n"
        "from device.service.errors import ServiceError\n"
        "from device.service.uploads import decode_upload\n"
        "try:\n"
        "    decode_upload(sys.stdin.buffer.read(), 40_000_000)\n"
        "except ServiceError as e:\n"
        "    print(json.dumps([e.status, e.code, e.detail]))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], input=heic, capture_output=True,
                         cwd=REPO, timeout=60, check=True)
    status, code, detail = json.loads(run.stdout)
    assert (status, code) == (415, "unsupported_image_format")
    assert "pip install pi-heif" in detail and "JPEG" in detail


def _jpeg(picture: np.ndarray, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize(("width", "height", "shrink"), [
    (4032, 3024, 4),  # a phone's 12 megapixels: libjpeg decodes a quarter as wide
    (1500, 1000, 2),
    (1279, 900, 1),  # 1279 // 2 is under 640: as large as it is
])
def test_a_large_jpeg_decodes_no_larger_than_the_reader_needs(
    width: int, height: int, shrink: int
) -> None:
    picture = np.full((height, width), 200, np.uint8)
    picture[: height // 4] = 40  # dark along the top
    decoded = decode_for_reading(_jpeg(picture), LIMIT, least_side=640)
    assert decoded.shrink == shrink and decoded.size == (height, width)
    assert decoded.frame.shape[:2] == (-(-height // shrink), -(-width // shrink))
    gray = decoded.frame if decoded.frame.ndim == 2 else cv2.cvtColor(decoded.frame,
                                                                      cv2.COLOR_BGR2GRAY)
    top = gray[: decoded.frame.shape[0] // 5].mean()
    assert top < 60 and gray[decoded.frame.shape[0] // 2 :].mean() > 180


def test_a_large_colour_jpeg_stored_turned_decodes_smaller_and_upright() -> None:
    stored = np.full((3024, 4032, 3), (200, 190, 170), np.uint8)
    stored[:, :500] = (30, 40, 120)  # RGB, blue; left as stored, at the top once turned
    decoded = decode_for_reading(_jpeg(stored, orientation=6), LIMIT, least_side=640)
    assert decoded.shrink == 4 and decoded.size == (4032, 3024)
    assert decoded.frame.shape == (1008, 756, 3)
    blue, _green, red = decoded.frame[:100].reshape(-1, 3).mean(axis=0)  # OpenCV's BGR
    assert blue > 100 and red < 50 and decoded.frame[200:].mean() > 170


def test_only_jpegs_decode_smaller_and_only_when_asked() -> None:
    picture = np.full((2000, 3000), 200, np.uint8)
    assert decode_for_reading(_encoded(Image.fromarray(picture), "PNG"), LIMIT,
                              least_side=640).shrink == 1
    assert decode_for_reading(_jpeg(picture), LIMIT, least_side=None).shrink == 1
    assert decode_image(_jpeg(picture), LIMIT).shape[:2] == (2000, 3000)


def test_bomb_is_refused_from_its_header() -> None:
    error = _error(_png_header_only(50_000, 50_000))
    assert error.status == 413
    assert error.code == "image_too_large"
    assert "50000×50000" in error.detail or "pixels" in error.detail


def test_image_just_over_the_pixel_limit_is_refused_before_decoding() -> None:
    with pytest.raises(ServiceError) as caught:
        decode_image(_png_header_only(2001, 1000), max_pixels=2_000_000)
    assert caught.value.status == 413


def test_transparent_background_becomes_white_paper() -> None:
    # A dark stroke on a transparent canvas, as a drawing app exports it: the colour channels of
    # transparent pixels are black, so dropping alpha would give an all-black frame.
    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[10:20, 14:16] = (0, 0, 0, 255)
    frame = decode_image(_encoded(Image.fromarray(rgba, "RGBA"), "PNG"), LIMIT)
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert gray[0, 0] == 255
    assert gray[15, 15] == 0


def _stroke_on_a_canvas(ink: int, mode: str) -> Image.Image:
    """A stroke of one shade on a transparent canvas: opaque where drawn, clear elsewhere."""
    alpha = np.zeros((30, 30), np.uint8)
    alpha[10:20, 14:16] = 255
    shade = np.full_like(alpha, ink)
    channels = [shade, alpha] if mode == "LA" else [shade, shade, shade, alpha]
    return Image.fromarray(np.dstack(channels), mode)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize(("ink", "ground"), [(0, 255), (255, 0)])
def test_a_transparent_canvas_becomes_the_ground_of_what_is_drawn_on_it(
        ink: int, ground: int, fmt: str, mode: str) -> None:
    # White strokes on a clear layer (a white pen in a drawing app) laid on white paper would
    # vanish: a canvas takes the shade that the strokes stand out from. OpenCV alone dropped a
    # grey TIFF's alpha, leaving one shade.
    frame = decode_image(_encoded(_stroke_on_a_canvas(ink, mode), fmt), LIMIT)
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert gray[0, 0] == ground
    assert gray[15, 15] == ink


def test_clear_corners_of_a_photo_stay_white_paper() -> None:
    # Mostly opaque: a light photo with clear rounded corners is no canvas, and its corners
    # stay white, as before.
    rgba = np.full((30, 30, 4), 230, np.uint8)
    rgba[:4, :4, 3] = 0
    rgba[10:20, 14:16, :3] = 20
    frame = decode_image(_encoded(Image.fromarray(rgba, "RGBA"), "PNG"), LIMIT)
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert gray[0, 0] == 255


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    deep = np.full((8, 8), 65535, np.uint16)
    ok, png = cv2.imencode(".png", deep)
    assert ok
    frame = decode_image(png.tobytes(), LIMIT)
    assert frame.dtype == np.uint8
    assert frame.max() == 255


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"hello, this is text", 415, "not_an_image"),
        (b"GIF89a" + b"\0" * 40, 400, "corrupt_image"),
        (_png_header_only(64, 64)[:30], 400, "corrupt_image"),
    ],
    ids=["text", "damaged-gif", "cut-header"],
)
def test_non_images_are_client_errors(data: bytes, status: int, code: str) -> None:
    error = _error(data)
    assert (error.status, error.code) == (status, code)
    assert error.expected  # says what would have worked


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "WebP"),
                                           ("BMP", "BMP"), ("GIF", "GIF"), ("TIFF", "TIFF")])
def test_an_image_sent_as_base64_text_is_named_so(fmt: str, name: str) -> None:
    """`curl --data-binary @digit.b64` or a data: URL was a bare 'not an image'."""
    image = _encoded(Image.new("L", (16, 16)), fmt)
    text = base64.b64encode(image)
    for body in (text, b"\n" + base64.encodebytes(image),  # as `base64` wraps it
                 b"data:image/x;base64," + text):
        error = _error(body)
        assert (error.status, error.code) == (415, "image_as_text"), error.detail
        assert "curl --data-binary @digit.png" in error.expected
        assert "curl -F file=@digit.png" in error.expected
    assert f"base64 text of a {name} image" in _error(text).detail
    assert "data: URL" in _error(b"data:image/x;base64," + text).detail
    # Base64 of anything but an image, and plain text, stay what they were.
    assert _error(base64.b64encode(b"hello, this is text")).code == "not_an_image"


def test_truncated_png_body_is_a_400() -> None:
    picture = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    png = _encoded(Image.fromarray(picture), "PNG")
    error = _error(png[: len(png) // 2])
    assert error.status == 400
    assert error.code == "corrupt_image"


def test_unsupported_format_is_a_415() -> None:
    ico = _encoded(Image.new("L", (16, 16)), "ICO")
    error = _error(ico)
    assert (error.status, error.code) == (415, "unsupported_image_format")


def _pillow_header(data: bytes) -> ImageHeader:
    with Image.open(io.BytesIO(data)) as image:
        alpha = image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info
        gray = image.mode in {"L", "I;16", "I"} and not alpha
        return ImageHeader(image.format, image.width, image.height, alpha, gray)


def _sample_images() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    grey = Image.fromarray((rng.random((23, 37)) * 255).astype(np.uint8))
    palette = grey.convert("P")
    palette.info["transparency"] = 0
    deep = io.BytesIO()
    Image.fromarray((rng.random((9, 7)) * 65535).astype(np.uint16)).save(deep, "PNG")
    progressive = io.BytesIO()
    grey.convert("RGB").save(progressive, "JPEG", progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated; the header still names the stored size
    with_exif = io.BytesIO()
    grey.save(with_exif, "JPEG", exif=exif.tobytes())
    return {
        "png-grey": _encoded(grey, "PNG"),
        "png-rgb": _encoded(grey.convert("RGB"), "PNG"),
        "png-rgba": _encoded(grey.convert("RGBA"), "PNG"),
        "png-grey-alpha": _encoded(grey.convert("LA"), "PNG"),
        "png-palette-transparent": _encoded(palette, "PNG"),
        "png-16-bit": deep.getvalue(),
        "jpeg-grey": _encoded(grey, "JPEG"),
        "jpeg-rgb": _encoded(grey.convert("RGB"), "JPEG"),
        "jpeg-progressive": progressive.getvalue(),
        "jpeg-exif": with_exif.getvalue(),
    }


SAMPLES = _sample_images()


@pytest.mark.parametrize("name", SAMPLES)
def test_png_and_jpeg_headers_say_what_pillow_says(name: str) -> None:
    assert read_header(SAMPLES[name]) == _pillow_header(SAMPLES[name])


@pytest.mark.parametrize("name", ["png-grey", "png-16-bit", "jpeg-grey", "jpeg-exif"])
def test_a_grey_image_is_decoded_grey_with_the_pixels_a_colour_decode_gives(name: str) -> None:
    data = SAMPLES[name]
    frame = decode_image(data, 10**6)
    assert frame.ndim == 2
    as_colour = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(frame, cv2.cvtColor(as_colour, cv2.COLOR_BGR2GRAY))


def test_other_formats_are_left_to_pillow() -> None:
    assert read_header(_encoded(Image.new("L", (5, 5)), "BMP")) is None


@pytest.mark.parametrize("name", SAMPLES)
def test_a_cut_header_is_damaged_never_a_crash(name: str) -> None:
    data = SAMPLES[name]
    signature = PNG_SIGNATURE if name.startswith("png") else JPEG_SIGNATURE
    pixels = data.index(b"IDAT") if b"IDAT" in data else data.index(b"\xff\xda")
    shortest = None  # the shortest prefix that names the size
    for cut in range(len(signature), len(data)):
        try:
            header = read_header(data[:cut])
        except DamagedHeaderError:
            continue
        shortest = cut
        break
    assert shortest is not None and shortest <= pixels + 4  # read before any pixel data
    assert header == _pillow_header(data)
    error = _error(data[: shortest - 1])
    assert (error.status, error.code) == (400, "corrupt_image")
    assert "header is damaged" in error.detail


def test_png_without_ihdr_first_is_damaged() -> None:
    png = _png_header_only(8, 8)
    moved = png[:8] + png[-12:] + png[8:]  # an IEND chunk before IHDR
    error = _error(moved)
    assert (error.status, error.code) == (400, "corrupt_image")
    assert "IHDR" in error.detail


def test_only_small_pngs_and_jpegs_count_as_tiny() -> None:
    tiny = _encoded(Image.new("L", (28, 28)), "PNG")
    assert small_picture_header(tiny, 28 * 28) is not None
    assert small_picture_header(_encoded(Image.new("L", (28, 28)), "JPEG"), 28 * 28) is not None
    assert small_picture_header(_encoded(Image.new("L", (29, 28)), "PNG"), 28 * 28) is None
    bmp = _encoded(Image.new("L", (16, 16)), "BMP")
    assert small_picture_header(bmp, 28 * 28) is None  # not parsed
    assert small_picture_header(tiny[:20], 28 * 28) is None  # damaged: the ordinary path
    # the header read once serves the decode: the same frame as reading it again
    header = small_picture_header(tiny, 28 * 28)
    assert np.array_equal(decode_image(tiny, LIMIT, header), decode_image(tiny, LIMIT))


def test_pictures_wait_for_room_in_the_pixel_budget() -> None:
    budget = PixelBudget(100)
    inside: list[str] = []
    events: list[str] = []
    first_in = threading.Event()
    let_go = threading.Event()

    def read(name: str, pixels: int, hold: threading.Event | None = None) -> None:
        with budget.room_for(pixels):
            inside.append(name)
            events.append(f"{name} in with {sorted(inside)}")
            first_in.set()
            if hold is not None:
                hold.wait(5)
            inside.remove(name)

    big = threading.Thread(target=read, args=("big", 70, let_go))
    big.start()
    assert first_in.wait(5)
    small = threading.Thread(target=read, args=("small", 30))  # fits beside it
    small.start()
    small.join(5)
    huge = threading.Thread(target=read, args=("huge", 1_000))  # over the budget: alone, later
    huge.start()
    huge.join(0.2)
    assert huge.is_alive()  # waiting for the big one
    let_go.set()
    for thread in (big, huge):
        thread.join(5)
    assert events == ["big in with ['big']", "small in with ['big', 'small']",
                      "huge in with ['huge']"]
