"""A deterministic camera-like test set: MNIST *test* digits photographed on paper, simulated.

Each frame is paper (tint, texture, a lighting gradient, vignetting) with MNIST test digits drawn
on it in dark ink of various colours, at varied size, position and small rotation, then blurred,
noised and JPEG-compressed like a cheap camera would. Some frames carry two or three digits side
by side (the truth is the number string), some carry no digit at all (blank paper, ruled paper,
specks): the truth for those is "".
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from train.data import VAL_SPLIT, Split, read_idx_images, read_idx_labels, split_validation
from train.pictures import FAMILIES, MEASURED_ONLY, thin_to_lines
from train.recipe import Recipe

FRAME_SIZES = ((240, 320), (300, 400), (360, 480))
INKS_BGR = (
    (25, 25, 25),  # black pen
    (110, 40, 20),  # blue ballpoint
    (60, 60, 60),  # pencil-ish grey
    (30, 30, 140),  # red
    (40, 80, 30),  # green
)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    truth: str  # the digits left to right, "" when the frame holds none
    kind: str  # "digits" or the kind of empty frame
    sources: tuple[int, ...] = ()  # indices of the MNIST test digits drawn, left to right


@functools.cache
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test images (N,28,28) uint8 and labels, read straight from the IDX files."""
    images = read_idx_images(Path(mnist_dir) / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_labels(Path(mnist_dir) / "t10k-labels-idx1-ubyte.gz")
    return images, labels


def mnist_digits(mnist_dir: Path, digits: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The test digits (for the figures a report quotes), or the validation digits that
    `python -m train` holds out of the training digits with its default split and seed (for
    choosing between two ways of reading: never on the test digits, never on a dev set)."""
    if digits == "test":
        return mnist_test(mnist_dir)
    if digits != "validation":
        raise ValueError(f"digits must be 'test' or 'validation', got {digits!r}")
    images = read_idx_images(Path(mnist_dir) / "train-images-idx3-ubyte.gz")
    labels = read_idx_labels(Path(mnist_dir) / "train-labels-idx1-ubyte.gz")
    _, validation = split_validation(Split(images, labels), VAL_SPLIT, Recipe().seed)
    return validation.x, validation.y


@functools.cache
def _noise_bank() -> np.ndarray:
    """One large field of unit Gaussian noise; frames take random windows of it (fast)."""
    return np.random.default_rng(12345).standard_normal((600, 800, 3), dtype=np.float32)


def _noise(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    bank = _noise_bank()
    if h > bank.shape[0] or w > bank.shape[1]:  # a large frame (benchmarks): the field tiled
        bank = np.tile(bank, (-(-h // bank.shape[0]), -(-w // bank.shape[1]), 1))
    y = int(rng.integers(0, bank.shape[0] - h + 1))
    x = int(rng.integers(0, bank.shape[1] - w + 1))
    return bank[y : y + h, x : x + w, :channels]


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def paper(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Paper albedo (H,W,3) in [0,1] and an illumination field (H,W,1): gradient × vignette."""
    tint = rng.uniform(0.78, 0.97) * (1 - rng.uniform(0, 0.06, 3))
    texture = 0.02 * _smooth_noise(rng, h, w, 24)[..., None] + 0.012 * _noise(rng, h, w, 1)
    albedo = np.clip(tint.astype(np.float32)[None, None, :] + texture, 0, 1)
    yy, xx = np.ogrid[0:h, 0:w]
    yy, xx = yy.astype(np.float32), xx.astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * 2
    light = 1.0 - rng.uniform(0.0, 0.35) * (ramp + 1) / 2
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    light *= 1.0 - rng.uniform(0.0, 0.3) * r2 / 2
    light *= rng.uniform(0.75, 1.05)
    return albedo, light[..., None].astype(np.float32)


def _digit_alpha(image: np.ndarray, height: int, turn_degrees: float) -> np.ndarray:
    """An MNIST digit scaled so its ink is ``height`` px tall, slightly rotated, cropped tight."""
    ys, xs = np.nonzero(image > 30)
    ink = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = height / ink.shape[0]
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    centre = (big.shape[1] / 2, big.shape[0] / 2)
    turn = cv2.getRotationMatrix2D(centre, turn_degrees, 1.0)
    big = cv2.warpAffine(big, turn, (big.shape[1], big.shape[0]))
    alpha = np.clip(big.astype(np.float32) / 255.0, 0, 1)
    ys, xs = np.nonzero(alpha > 0.1)
    return alpha[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _draw_lines(rng: np.random.Generator, albedo: np.ndarray) -> None:
    h, w = albedo.shape[:2]
    colour = np.array(rng.choice([(0.75, 0.6, 0.5), (0.6, 0.6, 0.6), (0.8, 0.55, 0.45)]))
    spacing = int(rng.integers(24, 40))
    for y in range(int(rng.integers(5, spacing)), h, spacing):
        cv2.line(albedo, (0, y), (w - 1, y + int(rng.integers(-3, 4))), colour.tolist(), 1)
    if rng.random() < 0.5:  # a margin line
        x = int(rng.integers(w // 10, w // 5))
        cv2.line(albedo, (x, 0), (x, h - 1), (0.5, 0.5, 0.85), 1)


def _draw_specks(rng: np.random.Generator, albedo: np.ndarray, count: int) -> None:
    h, w = albedo.shape[:2]
    for _ in range(count):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        shade = float(rng.uniform(0.2, 0.6))
        cv2.circle(albedo, centre, int(rng.integers(1, 3)), (shade, shade, shade), -1)


def _camera(rng: np.random.Generator, frame: np.ndarray) -> np.ndarray:
    """Blur, sensor noise and JPEG compression."""
    sigma = rng.uniform(0.3, 1.3)
    frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    noise = _noise(rng, *frame.shape[:2]) * rng.uniform(0.005, 0.03)
    frame = cv2.convertScaleAbs(frame + noise, alpha=255.0)
    quality = int(rng.integers(35, 90))
    encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def paper_frame(
    digit_images: list[np.ndarray], seed: int, size: tuple[int, int] = (240, 320)
) -> np.ndarray:
    """The given MNIST digits on paper, left to right, through the camera simulation."""
    rng = np.random.default_rng(seed)
    return _compose(rng, digit_images, size, lines=False, specks=0)


def paper_scene(draw: Callable[[np.ndarray], None], seed: int,
                size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """Paper through the camera simulation, with whatever ``draw`` puts on its albedo (float
    BGR 0..1, in place): an object lying on the sheet."""
    rng = np.random.default_rng(seed)
    albedo, light = paper(rng, *size)
    draw(albedo)
    return _camera(rng, albedo * light)


def _compose(
    rng: np.random.Generator,
    digit_images: list[np.ndarray],
    size: tuple[int, int],
    *,
    lines: bool,
    specks: int,
) -> np.ndarray:
    h, w = size
    albedo, light = paper(rng, h, w)
    if lines:
        _draw_lines(rng, albedo)
    _draw_specks(rng, albedo, specks)
    if digit_images:
        _write_digits(rng, albedo, digit_images)
    return _camera(rng, albedo * light)


def _write_digits(rng: np.random.Generator, albedo: np.ndarray,
                  digit_images: list[np.ndarray]) -> None:
    """The digits written on ``albedo`` (in place) side by side in one ink, as large as fits."""
    h, w = albedo.shape[:2]
    n = len(digit_images)
    # Digits need room side by side: the more digits, the smaller each may be.
    max_height = min(0.7 * h, 0.95 * w / (0.85 * n + 0.3 * (n - 1)))
    height = int(rng.uniform(0.3 * h, max_height))
    margin = int(0.04 * min(h, w))
    turns = rng.uniform(-12, 12, n)
    gap_fractions = rng.uniform(0.15, 0.4, n - 1)
    while True:  # shrink until the digits fit side by side (wide digits, wide rotations)
        pairs = zip(digit_images, turns, strict=True)
        alphas = [_digit_alpha(im, height, t) for im, t in pairs]
        gaps = [int(g * height) for g in gap_fractions]
        total = sum(a.shape[1] for a in alphas) + sum(gaps)
        if total <= w - 2 * margin:
            break
        height = int(height * 0.9)
    x = int(rng.integers(margin, max(margin + 1, w - total - margin)))
    ink = np.array(INKS_BGR[int(rng.integers(len(INKS_BGR)))], np.float32) / 255.0
    tallest = max(a.shape[0] for a in alphas)
    row_y = int(rng.integers(margin, max(margin + 1, h - tallest - margin)))
    for i, alpha in enumerate(alphas):
        ah, aw = alpha.shape
        # Digits of one number share a line, give or take a little handwriting wobble.
        wobble = int(rng.uniform(-0.08, 0.08) * height) + (tallest - ah) // 2
        y = int(np.clip(row_y + wobble, margin, h - ah - margin))
        region = albedo[y : y + ah, x : x + aw]
        a = alpha[..., None] * rng.uniform(0.85, 1.0)
        region[:] = region * (1 - a) + ink * a
        x += aw + (gaps[i] if i < n - 1 else 0)


def camera_like_set(mnist_dir: Path, count: int = 600, seed: int = 0,
                    digits: str = "test") -> list[Frame]:
    """``count`` frames: ~65% one digit, 15% two, 10% three, 10% no digit (deterministic)."""
    images, labels = mnist_digits(mnist_dir, digits)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    next_digit = 0
    frames = []
    for i in range(count):
        size = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
        roll = (i * 0.618034) % 1.0  # evenly spread frame types, independent of count
        if roll < 0.10:
            kind = ("blank", "ruled", "specks", "ruled+specks")[i % 4]
            specks = int(rng.integers(5, 40)) if "specks" in kind else 0
            image = _compose(rng, [], size, lines="ruled" in kind, specks=specks)
            frames.append(Frame(image, "", kind))
            continue
        n = 1 if roll < 0.75 else (2 if roll < 0.90 else 3)
        picks = order[next_digit : next_digit + n]
        next_digit += n
        image = _compose(
            rng,
            [images[j] for j in picks],
            size,
            lines=rng.random() < 0.15,
            specks=int(rng.integers(0, 6)),
        )
        truth = "".join(str(int(labels[j])) for j in picks)
        frames.append(Frame(image, truth, "digits", tuple(int(j) for j in picks)))
    return frames


def _table(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A table top (H,W,3) in [0,1]: a darker or lighter wood, laminate or cloth shade, with a
    grain along one direction (smooth noise stretched along it) and fine texture."""
    base = np.array(rng.choice([(0.25, 0.35, 0.5), (0.35, 0.4, 0.45), (0.15, 0.15, 0.17),
                                (0.5, 0.45, 0.4), (0.55, 0.6, 0.65), (0.3, 0.2, 0.15)]))
    base = base * rng.uniform(0.7, 1.2)
    grain = _smooth_noise(rng, h // 8 + 1, w // 8 + 1, 6)
    along = rng.uniform(4, 20)
    grain = cv2.resize(grain, None, fx=along if rng.random() < 0.5 else 1,
                       fy=1 if rng.random() < 0.5 else along)
    grain = cv2.resize(grain[: h // 8 + 1, : w // 8 + 1], (w, h), interpolation=cv2.INTER_CUBIC)
    texture = rng.uniform(0.02, 0.08) * grain + 0.015 * _noise(rng, h, w, 1)[..., 0]
    return np.clip(base[None, None, :] * (1 + texture[..., None]), 0, 1).astype(np.float32)


def _clutter(rng: np.random.Generator, scene: np.ndarray, sheet: np.ndarray) -> None:
    """A pen, a pencil or a coin on the table, some lying against or across the sheet's edge."""
    h, w = scene.shape[:2]
    table = np.argwhere(sheet == 0)
    if len(table) == 0:
        return
    for _ in range(int(rng.integers(1, 3))):
        y, x = (int(v) for v in table[int(rng.integers(len(table)))])
        colour = tuple(float(c) for c in rng.uniform(0.05, 0.6, 3))
        kind = rng.choice(["pen", "pencil", "coin"])
        if kind == "coin":
            cv2.circle(scene, (x, y), int(rng.uniform(0.03, 0.06) * min(h, w)), colour, -1)
            continue
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.3, 0.6) * min(h, w)
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        width = max(2, round((0.03 if kind == "pen" else 0.012) * min(h, w)))
        cv2.line(scene, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), colour, width)


def sheet_on_table_set(mnist_dir: Path, count: int = 200, seed: int = 11,
                       digits: str = "test", draw: int = 0) -> list[Frame]:
    """A probe of the sheet search: ``count`` camera frames of a sheet of paper lying on a
    table (a tilted rectangle over 30-75% of the frame, sometimes running off its edge), a
    pen, pencil or coin beside it in two frames of three (some lying against the sheet or
    across its edge), under the paper set's light; a third of the sheets blank, the rest with
    one MNIST digit written well inside them, or two. Nothing trains on it: it shows whether
    the table and what lies on it stay out of the reading, and the digits on the sheet are
    read."""
    images, labels = mnist_digits(mnist_dir, digits)
    order = _drawn(np.random.default_rng(seed).permutation(len(images)), 2 * count, draw)
    rng = np.random.default_rng((seed, draw))
    next_digit = 0
    frames = []
    for i in range(count):
        h, w = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
        albedo, light = paper(rng, h, w)
        n = int(rng.choice([0, 1, 1, 2])) if i % 3 else 0
        picks = order[next_digit : next_digit + n]
        next_digit += n
        scale = np.sqrt(rng.uniform(0.3, 0.75))
        size = (scale * w * rng.uniform(0.9, 1.2), scale * h * rng.uniform(0.9, 1.2))
        centre = (w / 2 + rng.uniform(-0.2, 0.2) * w, h / 2 + rng.uniform(-0.2, 0.2) * h)
        corners = cv2.boxPoints((centre, size, rng.uniform(-20, 20))).astype(np.int32)
        sheet = np.zeros((h, w), np.uint8)
        cv2.fillPoly(sheet, [corners], 1)
        if n:  # written well inside the sheet: the middle half of its box
            top, left = max(0, int(centre[1] - size[1] / 4)), max(0, int(centre[0] - size[0] / 4))
            _write_digits(rng, albedo[top : top + int(size[1] / 2), left : left + int(size[0] / 2)],
                          [images[j] for j in picks])
        scene = _table(rng, h, w)
        on_sheet = sheet.astype(bool)
        scene[on_sheet] = albedo[on_sheet]
        if i % 3 != 1:
            _clutter(rng, scene, sheet)
        truth = "".join(str(int(labels[j])) for j in picks)
        frames.append(Frame(_camera(rng, scene * light), truth, "digits" if n else "blank sheet",
                            tuple(int(j) for j in picks)))
    return frames


def labelled_pictures(folder: Path) -> list[tuple[str, np.ndarray, str]]:
    """A folder with LABELS.csv (file, label; handwriting_dev, photos_dev) as (file, BGR
    image, label) in LABELS.csv order; JPEGs upright by their EXIF orientation, as a browser
    shows them."""
    import csv

    with (Path(folder) / "LABELS.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    samples = []
    for row in rows:
        image = cv2.imread(str(Path(folder) / row["file"]), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{folder / row['file']} is missing or unreadable")
        samples.append((row["file"], image, row["label"]))
    return samples


def _drawn(order: np.ndarray, count: int, draw: int) -> np.ndarray:
    """The ``draw``-th run of ``count`` digits in ``order``: draws never share a digit, so a
    further draw is pictures no earlier report has read."""
    draws = len(order) // count
    if not 0 <= draw < draws:
        raise ValueError(f"there is no draw {draw} of {count} digits among {len(order)}: "
                         f"use draw 0 to {draws - 1}")
    return order[draw * count : (draw + 1) * count]


def picture_families(
    mnist_dir: Path, per_family: int = 500, seed: int = 2, digits: str = "test", draw: int = 0
) -> dict[str, list[tuple[str, np.ndarray, str]]]:
    """Each family of ordinary pictures (train.pictures) made from the same ``per_family``
    MNIST *test* digits (or validation digits): {family: [(name, picture, label)]}. Draw 0 is
    the one every report reads; further draws take other digits."""
    images, labels = mnist_digits(mnist_dir, digits)
    picks = _drawn(np.random.default_rng(seed).permutation(len(images)), per_family, draw)
    return {
        family: [(f"{family} #{i}", draw(images[i]), str(int(labels[i]))) for i in picks]
        for family, draw in {**FAMILIES, **MEASURED_ONLY}.items()
    }


def lifted_pen_set(
    mnist_dir: Path, count: int = 500, seed: int = 7, digits: str = "test", draw: int = 0
) -> list[tuple[str, np.ndarray, str]]:
    """MNIST *test* digits written with one pen lift: each cut once, at a random point of its
    strokes, by a disc 0.6 stroke widths in radius (a gap of about one stroke width), drawn
    ×10 in black on white with a margin. A probe of how the device path joins the pieces of
    one digit, not a picture family people send, so nothing trains on it."""
    images, labels = mnist_digits(mnist_dir, digits)
    rng = np.random.default_rng(seed)
    samples = []
    for i in _drawn(rng.permutation(len(images)), count, draw):
        big = cv2.resize(images[i], None, fx=10, fy=10, interpolation=cv2.INTER_CUBIC)
        ys, xs = np.nonzero(thin_to_lines(cv2.resize(images[i], None, fx=2, fy=2,
                                                     interpolation=cv2.INTER_CUBIC) > 127))
        stroke = np.count_nonzero(big > 127) / max(1, 5 * len(ys))  # ink area / line length
        k = int(rng.integers(len(ys)))
        cv2.circle(big, (int(xs[k]) * 5 + 2, int(ys[k]) * 5 + 2), round(0.6 * stroke), 0, -1)
        margin = round(0.15 * big.shape[0])
        picture = 255 - cv2.copyMakeBorder(big, margin, margin, margin, margin,
                                           cv2.BORDER_CONSTANT, value=0)
        samples.append((f"lifted pen #{i}", picture, str(int(labels[i]))))
    return samples


@dataclass
class Score:
    """Whole-path results. Digits are scored in place: a frame read with the wrong number of
    digits scores all of its digits wrong. Frames without a digit count separately."""

    per_digit: dict[str, list[int]] = field(default_factory=dict)  # label → [correct, total]
    frames_correct: int = 0
    frames: int = 0
    multi_correct: int = 0  # frames with several digits read exactly, in order
    multi: int = 0
    empty_read_as_digit: int = 0
    empty: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (name, truth, read)

    @property
    def digits_correct(self) -> int:
        return sum(c for c, _ in self.per_digit.values())

    @property
    def digits(self) -> int:
        return sum(t for _, t in self.per_digit.values())

    @property
    def accuracy(self) -> float:
        return self.digits_correct / max(1, self.digits)

    def record(self, name: str, truth: str, read: str) -> None:
        if not truth:
            self.empty += 1
            self.empty_read_as_digit += bool(read)
            if read:
                self.failures.append((name, truth, read))
            return
        self.frames += 1
        self.frames_correct += read == truth
        if len(truth) > 1:
            self.multi += 1
            self.multi_correct += read == truth
        aligned = len(read) == len(truth)
        for i, label in enumerate(truth):
            tally = self.per_digit.setdefault(label, [0, 0])
            tally[0] += aligned and read[i] == label
            tally[1] += 1
        if read != truth:
            self.failures.append((name, truth, read))

    def table(self) -> str:
        return ", ".join(
            f"{label}: {c}/{t}" for label, (c, t) in sorted(self.per_digit.items())
        )


def heic_bytes(picture: np.ndarray, orientation: int = 1, quality: int = 90) -> bytes:
    """``picture`` (gray or RGB) as a phone's HEIC photo, its EXIF ``orientation`` saying how to
    show it (6: turned 90° clockwise), which pillow-heif writes as the HEIF transform a phone
    uses. pillow-heif, from the dev extra, encodes: the device's pi-heif only decodes."""
    import pillow_heif
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(picture).convert("RGB")).save(
        buffer, quality=quality, exif=exif.tobytes())
    return buffer.getvalue()
