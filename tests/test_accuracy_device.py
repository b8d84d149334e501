"""Whole-path accuracy of the shipped model on every kind of picture (bench/device_accuracy.py
writes the same figures to docs/DEVICE_ACCURACY.md).

The floors are what the shipped model holds, at or a few pictures below its measured figures,
so that a change that reads worse fails here. They are not yet all of the product's targets
(the MNIST families ≥ 99% and photos_dev ≥ 99%, which they meet, camera-like ≥ 99.2%,
handwriting_dev ≥ 98.5% with every digit ≥ 96%, ≤ 5% flagged uncertain): where a floor is below
its target the comment says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import optdigits
from device.reader import DigitReader
from device.runtime import DigitModel
from tests.camera_like import (
    Score,
    camera_like_set,
    labelled_pictures,
    lifted_pen_set,
    picture_families,
    sheet_on_table_set,
)
from tests.conftest import REPO, SHARED_DATA, SHIPPED_MODEL

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SHIPPED_MODEL.is_file(),
        reason=f"{SHIPPED_MODEL} is not committed yet (the convert step ships it)",
    ),
]

# The families the issue names (the MNIST file, upscaled and tight crops, either polarity, and
# a crop loose on one side): measured 99.8-100%, held at the target.
TARGET_FAMILIES = ("mnist_file", "upscaled_white_on_black", "upscaled_black_on_white",
                   "tight_black_on_white", "tight_white_on_black", "loose_crop")
TARGET_FAMILY_FLOOR = 0.99
# The other drawings: canvas 99.4%, USPS style 99.6%; the bold marker, which fills small loops,
# 99.0% (96.2% while a clean picture's solid shapes were refused); the hairline pen 99.0%, on a
# page and cropped to its ink (98.8% and 97.2% while a fine bar half the picture wide was taken
# for a ruled line).
FAMILY_FLOOR = 0.98
MARKER_FLOOR = HAIRLINE_FLOOR = 0.99
# A phone photo cropped to its digit: measured 99.4% (the textbook pipeline 99.0%; 96.6% before the
# ground could be one smooth surface under the whole picture, which the boldest strokes, wider
# than even the wide closing, need; 79.0% before the closing widened); held at the floor of the
# other drawings.
PHOTO_CROP_FLOOR = FAMILY_FLOOR
# A phone photo of a form's field, the digit in a box drawn around it: measured 98.6% (the
# textbook pipeline 56.8%; 22-27% on validation digits while the box was read as part of the
# digit, 80-85% while a box more than half the picture wide lost its top and bottom as ruled
# lines and its sides read as 1s, 94.6% while faint light ink on a dark board was taken for
# dark ink).
BOXED_FLOOR = 0.97
# The same photo with a line under the digit: measured 98.8% (textbook 94.4%; 72-74% on
# validation digits while the line joined the digit, 91.0% before the polarity was also asked
# of the shades with the shading divided out, 92.8% before a digit was also read without a
# line that blur joined along its bottom, 97.0% while the model's surer reading decided every
# such line, a line whose lowest row was its blurred edge went unnoticed, and a narrow photo
# with the light falling off across it passed for a crop of a 1).
UNDERLINED_FLOOR = 0.98
# A phone photo with a hard-edged shadow (the phone's, a hand's) across the digit: measured 95.6%
# (textbook 20.6%; 95.2% while a band along the shadow's edge, in the view with the shading
# divided out, could pass for light strokes and decide the ink's polarity; 95.0% while a flat
# shadow's shade could pass for a clean picture's ground and decide the ink's polarity, 93.6%
# while a sliver of lit paper beside a wide shadow could pass for light strokes and decide the
# ink's polarity; 92.8% while a strip of shadow along the edge could fill with light under the
# wide closing, shadowed ink thicker than any digit could pass for a bold digit's on a clean
# ground, and light ink faded in a shadow; 92.4% while a corner of shadow or a sliver of its edge,
# cut off by the frame, could read as a second digit; 79.6% at a42dda4, while a low-noise photo's
# lit paper, one exact shade, could be the ground's level with the shadow as ink, a narrow photo
# split by a shadow passed for the crop of a 1, the steps kept through the smoothing were the wide
# closing's only, whatever the paper, a smooth surface could leave a whole shadow as ink where no
# step was found, and a bold digit's bay in the lit part made its outline turn a corner; 72.2%
# while a sheet's edge running straight across the picture was trusted where no stroke crossed it;
# 25.4% while the sheet search took the shadowed side for the table, 37.6% while the shadow's two
# levels of light decided the ink's polarity, 60.4% while the blurred paper left a band of "ink"
# along the shadow's edge, 66.4% while a smooth surface could be the paper across it, 70.8% while
# a flat shadow along the edge passed for a clean picture's ground; 72.2% before the sheet search
# closed the picture continued past its edge, which the sheet-on-a-table probe needs, and 71.2%
# after it, at 17ddc8e, before a light sheet decided the polarity), a known gap held where it is:
# a lit part whose edge turns a corner and no stroke crosses into is taken for the sheet, and a
# clean photo's shadow can still be ink (README, "Ground").
SHADOW_FLOOR = 0.94
OWN_FLOORS = {"thick_marker": MARKER_FLOOR, "photo_tight_crop": PHOTO_CROP_FLOOR,
              "hairline_pen": HAIRLINE_FLOOR, "hairline_tight_crop": HAIRLINE_FLOOR,
              "boxed_field": BOXED_FLOOR, "underlined": UNDERLINED_FLOOR,
              "shadowed_photo": SHADOW_FLOOR}
# The target (744 of 749); measured 745 of 749 (744 at a42dda4, before the shadow checks of the
# ground; 745 until the smooth ground saw as solid the blob of a 6 whose loop the marker
# filled, where the closing had dipped in and left a hole).
CAMERA_FLOOR = 0.992
# Digits cut once by a pen lift: measured 95.8% (94.6% before stacked pieces were joined).
LIFTED_PEN_FLOOR = 0.95
# A sheet lying on a table, a pen, pencil or coin beside it or across its edge: measured 96.4%
# of the digits read and 4 of 99 blank sheets read as a digit (95.6% and 4 at a42dda4, before
# the shadow checks of the ground; 90.5% and 9 at 7613fb1, while a
# pen crossing the sheet's edge passed for a stroke crossing a shadow's; 10 at 0f8bc0d, while a
# table with over 70% of the sheet's light never let it stand out; 11 at bfed68d, while blank
# paper's texture could pass for strokes crossing the sheet's edge; 13 at 17bcd94, while the
# band of table around a sheet that did not stand out passed for a digit framed by the
# picture; 46.7% and 26 at 17ddc8e, while a sheet on a darker table could pass for a light
# stroke on a dark ground and a pen cut off by the sheet's edge was read as a 1; 16.8% and 60
# of 99 at be6c4bf, while a strip of table along the frame's edge, narrower than the closing,
# joined the sheet). A known gap, held where it is: where the table is nearly as light as the
# sheet (over 90% of its light, or uneven), the whole picture is searched.
SHEET_PROBE_FLOOR = 0.95
SHEET_PROBE_BLANKS_READ = 5
NOT_FLAGGED_FLOOR = 0.995  # the target
# Real handwriting from outside the repository (UCI optdigits, 8×8 scans of 13 writers): the
# issue's aim for scans, 97%; measured 97.7%. Its weakest digit, the 4 (90.6%: at 8×8 a 4
# whose strokes meet low reads as a 6), is held where it is measured, far below the 96% asked
# of handwriting_dev's digits.
OPTDIGITS = REPO / ".cache" / "optdigits" / "digits.csv.gz"  # `make test` fetches it
OUTSIDE_FLOOR = 0.97
OUTSIDE_DIGIT_FLOOR = 0.90


@pytest.fixture(scope="module")
def reader() -> DigitReader:
    return DigitReader(DigitModel(SHIPPED_MODEL))


def _read_all(reader: DigitReader, samples) -> tuple[Score, list[tuple[bool, bool]]]:
    """The score, and for each picture of one digit: (read correctly, flagged uncertain)."""
    score, flags = Score(), []
    for name, picture, truth in samples:
        reading = reader.read(picture)
        score.record(name, truth, reading.number or "")
        if len(truth) == 1:
            flags.append((reading.number == truth, bool(reading.uncertain)))
    return score, flags


def test_camera_like_set(reader: DigitReader, mnist_dir: Path) -> None:
    frames = camera_like_set(mnist_dir)
    score, _ = _read_all(reader, [(f"frame {i}", f.image, f.truth) for i, f in enumerate(frames)])
    assert score.empty == 60 and score.multi > 100  # the set is what it claims to be
    assert score.empty_read_as_digit == 0, f"digits 'found' on empty paper: {score.failures}"
    assert score.accuracy >= CAMERA_FLOOR, (
        f"{score.digits_correct}/{score.digits} digits; per digit {score.table()}; "
        f"misread {score.failures}"
    )
    assert score.multi_correct / score.multi >= 0.95, f"{score.multi_correct}/{score.multi}"


def test_every_picture_family(reader: DigitReader, mnist_dir: Path) -> None:
    below = {}
    for family, samples in picture_families(mnist_dir).items():
        score, _ = _read_all(reader, samples)
        assert score.digits == 500
        floor = (TARGET_FAMILY_FLOOR if family in TARGET_FAMILIES
                 else OWN_FLOORS.get(family, FAMILY_FLOOR))
        if score.accuracy < floor:
            below[family] = (score.accuracy, score.failures[:10])
    assert not below, below


def test_lifted_pen_probe(reader: DigitReader, mnist_dir: Path) -> None:
    score, _ = _read_all(reader, lifted_pen_set(mnist_dir))
    assert score.digits == 500
    assert score.accuracy >= LIFTED_PEN_FLOOR, (
        f"{score.digits_correct}/500; per digit {score.table()}; misread {score.failures}")


def test_sheet_on_table_probe(reader: DigitReader, mnist_dir: Path) -> None:
    frames = sheet_on_table_set(mnist_dir)
    score, _ = _read_all(reader, [(f"sheet {i}", f.image, f.truth) for i, f in enumerate(frames)])
    assert score.empty == 99 and score.digits == 137  # the probe is what it claims to be
    assert score.empty_read_as_digit <= SHEET_PROBE_BLANKS_READ, score.failures
    assert score.accuracy >= SHEET_PROBE_FLOOR, (
        f"{score.digits_correct}/{score.digits}; misread {score.failures}")


@pytest.mark.parametrize(
    ("folder", "floors"),
    [
        # measured 98.5%, weakest digit 94% (the 7s), 5.2% flagged (targets 98.5%, 96%, 5%):
        # the accuracy floors are the measured figures themselves, no margin
        ("handwriting_dev", (400, 0.985, 0.94, 0.06)),
        # measured 99.63%, weakest digit 96.2%, 1.5% flagged: held at the targets
        ("photos_dev", (268, 0.99, 0.96, 0.05)),
    ],
)
def test_real_handwriting(reader: DigitReader, folder: str,
                         floors: tuple[int, float, float, float]) -> None:
    """floors: pictures in the set, accuracy, weakest digit's accuracy, most flagged."""
    digits, floor, per_digit_floor, flagged_ceiling = floors
    score, flags = _read_all(reader, labelled_pictures(SHARED_DATA / folder))
    assert score.digits == digits
    detail = f"per digit {score.table()}; misread {score.failures}"
    assert score.accuracy >= floor, f"{score.digits_correct}/{digits}; {detail}"
    weakest = min(c / t for c, t in score.per_digit.values())
    assert weakest >= per_digit_floor, detail
    # The uncertain flag marks the doubtful readings: set aside, the rest are nearly all right.
    flagged = sum(uncertain for _, uncertain in flags) / len(flags)
    kept = [ok for ok, uncertain in flags if not uncertain]
    assert flagged <= flagged_ceiling, f"{flagged:.1%} flagged"
    assert sum(kept) / len(kept) >= NOT_FLAGGED_FLOOR, (
        f"{sum(kept)}/{len(kept)} right among those not flagged ({flagged:.1%} flagged)")


def test_outside_handwriting(reader: DigitReader) -> None:
    if not OPTDIGITS.is_file():
        pytest.skip(f"{OPTDIGITS} is missing: `make test` fetches it from PyPI (python -m "
                    "bench.optdigits FILE), which did not work here")
    score, _ = _read_all(reader, optdigits.read(OPTDIGITS))
    assert score.digits == 1797
    detail = f"per digit {score.table()}; misread {score.failures[:20]}"
    assert score.accuracy >= OUTSIDE_FLOOR, f"{score.digits_correct}/1797; {detail}"
    assert min(c / t for c, t in score.per_digit.values()) >= OUTSIDE_DIGIT_FLOOR, detail
