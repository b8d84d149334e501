"""The ordinary pictures people take of one handwritten digit, made from an MNIST digit.

A device that reads only camera scenes of a sheet fails on the pictures people most often send:
the MNIST file itself, a tight crop, a canvas drawing, a USPS-style 16×16 digit scaled up, white
on black as often as black on white, a bold marker or a hairline pen. Each family here renders
one 28×28 MNIST digit (white on black, as stored) into such a picture. The same functions make
the development benchmark (from MNIST *test* digits) and training pictures (from MNIST
*training* digits): never from the development scans or photos.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Family = Callable[[np.ndarray], np.ndarray]


def _tight(digit: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(digit > 0)
    return digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _up(digit: np.ndarray, factor: int) -> np.ndarray:
    return cv2.resize(digit, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def _black_on_white(image: np.ndarray) -> np.ndarray:
    return 255 - image


def _with_margin(image: np.ndarray, fraction: float) -> np.ndarray:
    pad = round(fraction * max(image.shape))
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)


def mnist_file(digit: np.ndarray) -> np.ndarray:
    """The MNIST PNG itself: 28×28, white on black."""
    return digit.copy()


def upscaled_white_on_black(digit: np.ndarray) -> np.ndarray:
    """The MNIST digit shown large (280×280), white on black."""
    return _up(digit, 10)


def upscaled_black_on_white(digit: np.ndarray) -> np.ndarray:
    """The MNIST digit shown large (280×280), black on white."""
    return _black_on_white(_up(digit, 10))


def tight_black_on_white(digit: np.ndarray) -> np.ndarray:
    """Cropped to the ink (the digit touches all four edges), ×8, black on white."""
    return _black_on_white(_up(_tight(digit), 8))


def tight_white_on_black(digit: np.ndarray) -> np.ndarray:
    """Cropped to the ink, ×8, white on black."""
    return _up(_tight(digit), 8)


def canvas_drawing(digit: np.ndarray) -> np.ndarray:
    """A drawing on a web canvas: hard-edged round-brush strokes, black on a white 280×280."""
    return _black_on_white((_up(digit, 10) > 127).astype(np.uint8) * 255)


def usps_style(digit: np.ndarray) -> np.ndarray:
    """A USPS-style digit: its ink fitted to a 16×16 box, white on black, shown ×8 (blocky)."""
    ink = _tight(digit)
    scale = 16 / max(ink.shape)
    h, w = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    small = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA)
    box = np.zeros((16, 16), np.uint8)
    y0, x0 = (16 - h) // 2, (16 - w) // 2
    box[y0 : y0 + h, x0 : x0 + w] = small
    box = cv2.normalize(box, None, 0, 255, cv2.NORM_MINMAX)
    return cv2.resize(box, (128, 128), interpolation=cv2.INTER_NEAREST)


def thick_marker(digit: np.ndarray) -> np.ndarray:
    """A bold marker: strokes about twice MNIST's width, black on white, with a margin."""
    big = _up(digit, 10)
    bold = cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21)))
    return _black_on_white(_with_margin(bold, 0.1))


def thin_to_lines(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning: a binary shape (uint8 0/1) down to connected one-pixel lines."""
    image = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(image, -dy, 0), -dx, 1) for dy, dx in
                 ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]
            neighbours = sum(p)
            transitions = sum((p[i] == 0) & (p[(i + 1) % 8] == 1) for i in range(8))
            if step == 0:
                gone = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                gone = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            remove = (image == 1) & (neighbours >= 2) & (neighbours <= 6) & gone
            remove &= transitions == 1
            if remove.any():
                image[remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1]


def hairline_pen(digit: np.ndarray) -> np.ndarray:
    """A fine pen: strokes about 3 px wide on a 280×280 picture, black on white."""
    lines = thin_to_lines(_up(digit, 5) > 127)
    big = cv2.resize(lines * 255, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    return _black_on_white(cv2.GaussianBlur(cv2.dilate(big, np.ones((2, 2), np.uint8)), (3, 3), 0))


def hairline_tight_crop(digit: np.ndarray) -> np.ndarray:
    """A fine pen (as hairline_pen) cropped to its ink: the digit touches all four edges, and a
    bar (a 7's, a 4's) may run from edge to edge, as long and thin as a ruled line."""
    return _black_on_white(_tight(_black_on_white(hairline_pen(digit))))


def loose_crop(digit: np.ndarray) -> np.ndarray:
    """Cropped to the ink on three sides and loosely on the fourth, left or right (half the
    digit's width again), ×8, black on white: the digit spans the picture top to bottom, off
    centre. The side is taken from the digit's own ink, so a digit always gives one picture."""
    ink = _up(_tight(digit), 8)
    pad = round(0.5 * ink.shape[1])
    left = int(digit.sum()) % 2 == 1
    return _black_on_white(cv2.copyMakeBorder(ink, 0, 0, pad if left else 0,
                                              0 if left else pad, cv2.BORDER_CONSTANT, value=0))


# The families training draws its pictures from (train/device_inputs.py). A family added to
# this list changes what every recipe trains on, so one added after a model was trained is
# measured only (MEASURED_ONLY) until a model is trained with it.
FAMILIES: dict[str, Family] = {
    "mnist_file": mnist_file,
    "upscaled_white_on_black": upscaled_white_on_black,
    "upscaled_black_on_white": upscaled_black_on_white,
    "tight_black_on_white": tight_black_on_white,
    "tight_white_on_black": tight_white_on_black,
    "canvas_drawing": canvas_drawing,
    "usps_style": usps_style,
    "thick_marker": thick_marker,
    "hairline_pen": hairline_pen,
}


def photo(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A phone photo of the digit on paper: uneven light, ink that is not black, blur, noise,
    JPEG; the digit anywhere from a quarter to most of the picture's height."""
    return _photo_and_box(digit, rng)[0]


def photo_tight_crop(digit: np.ndarray) -> np.ndarray:
    """A phone photo (as photo) cropped to the digit's ink, as a gallery app's crop tool leaves
    it: the digit fills the picture and its strokes run into the edges. The photo is drawn from
    the digit's own ink, so a digit always gives one picture."""
    picture, (x, y, w, h) = _photo_and_box(digit, np.random.default_rng(int(digit.sum())))
    return picture[y : y + h, x : x + w]


def boxed_field(digit: np.ndarray) -> np.ndarray:
    """A phone photo (as photo) of a form's field: the digit written inside a box drawn around
    it, clear of its strokes. The photo is drawn from the digit's own ink."""
    return _photo_and_box(digit, np.random.default_rng(int(digit.sum())), _box_around)[0]


def underlined(digit: np.ndarray) -> np.ndarray:
    """A phone photo (as photo) of the digit with a line drawn under it, clear of its strokes
    (as a 6 or a 9 is underlined to show which way up it is). Drawn from the digit's ink."""
    return _photo_and_box(digit, np.random.default_rng(int(digit.sum())), _line_under)[0]


Mark = Callable[[np.ndarray, tuple[int, int, int, int], np.random.Generator], None]


def _box_around(ink: np.ndarray, box: tuple[int, int, int, int],
                rng: np.random.Generator) -> None:
    """A pen's box around the digit's ink box, a tenth to a third of its height away."""
    x, y, w, h = box
    thickness = max(1, round(rng.uniform(0.02, 0.05) * h))
    gap = thickness + max(3, round(rng.uniform(0.1, 0.3) * h))
    cv2.rectangle(ink, (x - gap, y - gap), (x + w + gap, y + h + gap), 1.0, thickness)


def _line_under(ink: np.ndarray, box: tuple[int, int, int, int],
                rng: np.random.Generator) -> None:
    """A pen's line under the digit's ink box, reaching a little past it on both sides."""
    x, y, w, h = box
    thickness = max(1, round(rng.uniform(0.03, 0.06) * h))
    below = y + h + thickness + max(3, round(rng.uniform(0.05, 0.15) * h))
    reach = round(rng.uniform(0.1, 0.4) * w)
    cv2.line(ink, (x - reach, below), (x + w + reach, below), 1.0, thickness)


def shadowed_photo(digit: np.ndarray) -> np.ndarray:
    """A phone photo (as photo) with the shadow of the phone or a hand across the digit: a
    straight, slightly soft edge through the digit, a third to three fifths darker beyond it.
    Drawn from the digit's own ink."""
    return _photo_and_box(digit, np.random.default_rng(int(digit.sum())), shadow=True)[0]


def _shadow_across(shape: tuple[int, int], box: tuple[int, int, int, int],
                   rng: np.random.Generator) -> np.ndarray:
    """How much light a shadow whose edge crosses ``box`` leaves at each pixel (0.4..1)."""
    x, y, w, h = box
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    through_x, through_y = x + w * rng.uniform(0.3, 0.7), y + h * rng.uniform(0.3, 0.7)
    across = (xx - through_x) * np.cos(angle) + (yy - through_y) * np.sin(angle)
    softness = rng.uniform(0.01, 0.04) * h
    return 1.0 - rng.uniform(0.35, 0.6) / (1.0 + np.exp(-across / softness))


def _photo_and_box(
    digit: np.ndarray, rng: np.random.Generator, mark: Mark | None = None,
    shadow: bool = False,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The photo, and where in it the digit's ink box lies (x, y, w, h); ``mark`` draws more
    ink around the digit (a box, an underline), with room left for it in the photo; with
    ``shadow``, a shadow's edge crosses the digit."""
    h, w = int(rng.integers(160, 480)), int(rng.integers(160, 480))
    height = int(rng.uniform(0.25, 0.8 if mark is None else 0.55) * min(h, w))
    ink = _up(_tight(digit), 8).astype(np.float32) / 255.0
    scale = height / ink.shape[0]
    ink = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ink = ink[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 - rng.uniform(0, 0.4) * ((np.cos(angle) * xx / w + np.sin(angle) * yy / h) + 1) / 2
    paper = rng.uniform(0.6, 0.97) * light
    room = 0 if mark is None else round(0.4 * ink.shape[0])  # for the mark around the digit
    y, x = (int(rng.integers(min(room, free), max(min(room, free), free - room) + 1))
            for free in (h - ink.shape[0], w - ink.shape[1]))
    alpha = np.zeros((h, w), np.float32)
    alpha[y : y + ink.shape[0], x : x + ink.shape[1]] = ink
    if mark is not None:
        mark(alpha, (x, y, ink.shape[1], ink.shape[0]), rng)
    alpha *= rng.uniform(0.7, 1.0)
    shade = paper * rng.uniform(0.05, 0.45)
    picture = paper * (1 - alpha) + shade * alpha
    picture = cv2.GaussianBlur(picture, (0, 0), rng.uniform(0.3, 1.5))
    picture += rng.normal(0, rng.uniform(0.003, 0.03), picture.shape).astype(np.float32)
    picture = np.clip(picture * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:  # a light pen on a dark board
        picture = 255 - picture
    if shadow:
        box = (x, y, ink.shape[1], ink.shape[0])
        picture = (picture * _shadow_across(picture.shape, box, rng)).astype(np.uint8)
    quality = int(rng.integers(40, 95))
    picture = cv2.imdecode(cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 0)
    return picture, (x, y, ink.shape[1], ink.shape[0])


MEASURED_ONLY: dict[str, Family] = {
    "loose_crop": loose_crop,
    "photo_tight_crop": photo_tight_crop,
    "hairline_tight_crop": hairline_tight_crop,
    "boxed_field": boxed_field,
    "underlined": underlined,
    "shadowed_photo": shadowed_photo,
}
