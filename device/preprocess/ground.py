"""What surrounds the strokes: the ink's polarity, the paper's brightness and the sheet.

Every stage after this one sees ink as bright on a dark, flat ground: the ink map says how much
darker (or lighter) than its local ground each pixel is."""

from __future__ import annotations

import functools
from typing import NamedTuple

import cv2
import numpy as np

from device.preprocess.measure import (
    components,
    disk,
    fills_its_hull,
    median,
    odd,
    percentiles,
    shade_percentiles,
    small_copy,
    stroke_width,
)

# A picture whose ground is one exact shade (±1) over this share of it is clean (not a photo).
CLEAN_GROUND_SHARE = 0.5
# ...unless the strokes' thickness says the other polarity more clearly than this (polarity).
CLEAN_DOUBT = 1.0
# A clean picture's ink thicker than this for its size may be no ink (thickness: ~0.1 for a
# digit's strokes, 0.3 and more for a sheet's half): only then is the costlier margin asked.
STROKE_THICKNESS = 0.2
# A sheet that limits the search covers more than this share of the picture, and less than
# all but this share (paper_region, light_sheet).
SHEET_SHARE = 0.1
# Light marks over this share of a light shape show that it is no sheet (light_sheet).
LIGHTER_MARKS = 0.005
# An outline whose points spread across their main axis by under this share of their spread
# along it is one straight line (turns_a_corner): a line's is a pixel in dozens, an L's a third.
STRAIGHT_SPREAD = 0.15
# The ground is estimated on a copy this many px on its longer side (ink_map).
GROUND_SIDE = 80
# The ground is continued this share of the picture's longer side beyond its edges (ink_map).
GROUND_MARGIN = 0.25
# A photo's ground is closed that wide only where its paper noise falls below this share of
# the usual closing's (ink_map): strokes left in the ground are noise, real shading is not.
WIDE_GROUND_GAIN = 0.8
# The smooth ground (fitted_ground) is fitted twice: to the paper Otsu finds, then to the paper
# the first surface finds; on a copy this many px on its longer side (as good as 40 or 80 px on
# validation pictures, in less time: six unknowns need few pixels).
GROUND_FIT_ROUNDS = 2
FIT_SIDE = 24
# Fewer paper pixels than this (of the FIT_SIDE copy) fit no surface: four per unknown.
MIN_FIT_PIXELS = 24
# The shading is divided out (unshaded) against a median this share of the small copy's
# shorter side wide: wider than twice any stroke where the picture has room for ground, and
# the ground lands on FLAT_GROUND, leaving room for light strokes above it.
FLAT_WINDOW = 0.5
FLAT_GROUND = 160
# The ground that keeps steps (smooth_keeping_steps) is not smoothed across a step of more
# than about this much of the light (in log units, ~10%): paper noise is a few percent, a
# shadow takes a third of the light or more.
STEP_LOG = 0.1


def dark_ink_margin(small: np.ndarray) -> float:
    """How clearly the ink is dark on a light ground (> 0) rather than light strokes on a dark
    ground (< 0), judged on a small copy of the picture (about GROUND_SIDE px): the log of how
    much thicker the light shades are than half the dark's. 0 where the two shades differ too
    little to tell, which counts as dark ink.

    Decided by what surrounds the strokes, not by which shade covers more of the picture:
    strokes are thin everywhere, the ground around them (paper, a board, a black canvas) is
    wide somewhere. Light strokes are assumed only when the light in the picture is far thinner
    than the dark; a light sheet on a dark table is thick too, and dark ink is the rule there,
    as on a blank picture.
    """
    small = cv2.medianBlur(small, 3)  # specks and JPEG noise are not structure
    level, light = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)

    # Paper texture or light falling off, split in two, is no light ink: strokes stand out
    # from their ground. The light part is the shades above Otsu's level.
    counts = np.bincount(small.ravel(), minlength=256)
    light_counts = np.where(np.arange(256) > level, counts, 0)
    dark_counts = counts - light_counts
    if not light_counts.any() or not dark_counts.any():
        return 0.0
    light_shade = shade_percentiles(light_counts, (50,))[0]
    dark_shade = shade_percentiles(dark_counts, (50,))[0]
    if light_shade - dark_shade < 48:
        return 0.0
    # Light strokes on a dark ground are at most half as thick as that ground (0.48 at most on
    # MNIST-derived pictures); a sheet is more than twice as thick as its ink (2.4 at least
    # on camera-like frames).
    return float(np.log(max(thickness(light), 1e-3) / max(0.5 * thickness(1 - light), 1e-3)))


def unshaded(small: np.ndarray) -> np.ndarray:
    """The small copy with its shading divided out: each pixel against the median of a window
    FLAT_WINDOW of the picture wide, on FLAT_GROUND. The median is the ground wherever strokes
    cover less than half of the window, and a shadow's edge stays sharp in it (a closing or a
    blur would smear it), so light and shadow on one sheet become one ground."""
    ground = cv2.medianBlur(small, odd(FLAT_WINDOW * min(small.shape))).astype(np.float32)
    flat = small.astype(np.float32) / np.maximum(ground, 8.0) * FLAT_GROUND
    return np.clip(flat, 0, 255).astype(np.uint8)


def thickness(mask: np.ndarray) -> float:
    """How thick the largest shape of a binary mask is for its size: the widest inscribed
    circle's radius over the shape's longer side. About 0.1 for a digit's strokes, 0.3 for a
    sheet of paper or the ground around a digit."""
    n, labels, stats = components(mask)
    if n <= 1:
        return 0.0
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    shape = (labels == largest).astype(np.uint8)
    # Outside the picture counts as more of the same: a stroke running off the edge stays thin.
    padded = cv2.copyMakeBorder(shape, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    radius = float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())
    return radius / max(stats[largest, cv2.CC_STAT_WIDTH], stats[largest, cv2.CC_STAT_HEIGHT])


def paper_region(smooth: np.ndarray) -> np.ndarray:
    """The sheet (bool mask) on the stroke-free ground of a small copy of the frame (strokes
    closed away, close_strokes): the bright region reachable from its brightest central part
    without crossing a sharp step (a sheet's edge, a hand, a table); smooth shadows and
    gradients do not stop it, and what is left of the strokes are holes that get filled. The
    whole frame when no sheet stands out (a close-up of paper, a scan)."""
    h, w = smooth.shape
    centre = smooth[h // 4 : h - h // 4, w // 4 : w - w // 4]
    y, x = np.unravel_index(int(np.argmax(centre)), centre.shape)
    seed = (int(x) + w // 4, int(y) + h // 4)
    tolerance = max(2, int(0.03 * smooth[seed[1], seed[0]]))  # per pixel step at this scale
    fill = np.zeros((h + 2, w + 2), np.uint8)
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    cv2.floodFill(smooth, fill, seed, 0, tolerance, tolerance, flags)
    region = fill[1:-1, 1:-1] > 0
    # Fill the holes (the ink): whatever outside the sheet cannot reach from the frame border.
    outside = np.ones((h + 2, w + 2), np.uint8)  # a frame of "outside" all around
    outside[1:-1, 1:-1] = ~region
    reach = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(outside, reach, (0, 0), 0, 0, 0, 4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8))
    outside = (reach[2:-2, 2:-2] > 0).astype(np.uint8)
    # The surroundings of a sheet run along the frame's edge; ink that reaches the edge (a
    # digit written up to the edge of a scan) touches it only briefly and belongs to the sheet.
    n, labels = cv2.connectedComponents(outside, connectivity=8)
    edge = np.concatenate((labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]))
    contact = np.bincount(edge, minlength=n)
    surroundings = contact >= 0.1 * len(edge)
    surroundings[0] = False
    for i in np.flatnonzero(surroundings):  # and are wide, where a stroke is thin
        surroundings[i] = stroke_width(labels == i) >= 0.1 * min(h, w)
    region = np.take(~surroundings, labels)
    # Only a sheet that clearly stands out from its surroundings limits the search.
    if not SHEET_SHARE < np.count_nonzero(region) / region.size < 1 - SHEET_SHARE:
        return np.ones_like(region)
    if median(smooth[~region]) > 0.7 * median(smooth[region]):
        return np.ones_like(region)
    # Stay off the sheet's edge and its shadow.
    return cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def strokes_cross(small: np.ndarray, paper: np.ndarray, region: np.ndarray) -> bool:
    """Whether a stroke runs from well inside the sheet across its edge to well inside what was
    taken for its surroundings: then the edge is a shadow's (the phone's, a hand's) on the same
    paper, as ink never crosses a sheet's edge onto the table. Strokes are what Otsu finds
    darker than the stroke-free ground of the small copy (``paper``, closed as if the picture
    went on past its edge, close_strokes' ``beyond``, so a strip of table along the edge is no
    stroke); "well inside" is two pixels from the edge, where a sheet's own blurred rim is
    not."""
    ratio = np.clip(against_paper(paper.astype(np.float32), small.astype(np.float32)) * 255,
                    0, 255).astype(np.uint8)
    _, strokes = cv2.threshold(ratio, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, _ = components(strokes)
    if n < 2:
        return False
    deep = np.ones((5, 5), np.uint8)
    inside = cv2.erode(region.astype(np.uint8), deep).astype(bool)
    outside = cv2.erode((~region).astype(np.uint8), deep).astype(bool)
    on_both = np.zeros(n, bool)
    on_both[np.unique(labels[inside & (labels > 0)])] = True
    return bool(on_both[np.unique(labels[outside & (labels > 0)])].any())


def crop_of_a_one(small: np.ndarray) -> bool:
    """Whether a picture (its small copy) is a crop of a narrow digit such as a 1: narrow
    (narrow_crop), with both its darker and its lighter shades (Otsu's) running from near its
    top to near its bottom, as the stroke and the ground beside it do. A narrow photo of paper
    with a digit somewhere in it is no such crop. The same either way the ink goes."""
    if not narrow_crop(small.shape):
        return False
    _, dark = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return _spans_height(dark) and _spans_height(1 - dark)


def _spans_height(mask: np.ndarray) -> bool:
    rows = np.flatnonzero(mask.any(axis=1))
    return len(rows) > 0 and rows[-1] - rows[0] + 1 >= 0.8 * mask.shape[0]


def narrow_crop(shape: tuple[int, int]) -> bool:
    """A picture less than half as wide as it is tall: no camera or phone frames like that (a
    phone held upright is 9:16 at most), a crop of a narrow digit such as a 1 does."""
    h, w = shape
    return w < h / 2


def close_strokes(image: np.ndarray, wide: bool = False, beyond: int = 0) -> np.ndarray:
    """The ground without the strokes: a closing wider than any stroke. Usually a fifth of
    the picture's shorter side (strokes are at most ~1/10 of a digit, digits at most the
    picture); with ``wide``, a quarter of its longer side, for a photo cropped to its digit,
    whose strokes may be a fifth of the picture wide. With ``beyond``, the picture continued
    that many px past each edge in the shade along it, closed (the closing's width still the
    picture's own), at that larger size: a strip of table along the edge narrower than the
    closing then stays table, where the closing alone fills it with the light of the sheet
    beside it."""
    size = odd(max(image.shape) / 4 if wide else min(image.shape) / 5)
    if not beyond:
        return cv2.morphologyEx(image, cv2.MORPH_CLOSE, disk(size))
    continued = cv2.copyMakeBorder(image, beyond, beyond, beyond, beyond, cv2.BORDER_REPLICATE)
    return cv2.morphologyEx(continued, cv2.MORPH_CLOSE, disk(size))


def uniform_ground(pixels: np.ndarray) -> int | None:
    """The ground's level when the picture is clean (dark ink assumed): a drawing, a digital
    crop, an MNIST or USPS file, a scan saturated to white. Most of its ground is one exact
    shade, however little ground a tight crop leaves; a photo's ground never is (sensor noise,
    light falling off), and needs flat-fielding. None when the picture is not clean."""
    level, _ = cv2.threshold(pixels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    counts = np.bincount(pixels.ravel(), minlength=256)  # all that follows needs only these
    shades = np.arange(256)
    ground = counts * (shades > level)
    if ground.sum() < 0.05 * pixels.size:
        return None
    mode = int(np.argmax(ground))
    # Leave out the soft edges of the strokes: in a tight crop they may be most of the ground.
    ground = ground * (shades > (level + mode) / 2)
    share = ground[max(0, mode - 1) : mode + 2].sum() / max(1, ground.sum())
    return mode if share >= CLEAN_GROUND_SHARE else None


def edge_shade(image: np.ndarray) -> int:
    """The shade along the picture's edge: mostly ground, whatever the strokes touch."""
    edge = np.concatenate((image[0, :], image[-1, :], image[:, 0], image[:, -1]))
    return int(median(edge))


def polarity(gray: np.ndarray, small: np.ndarray, pad: int,
             ones_crop: bool | None = None) -> tuple[bool, int | None]:
    """Whether the ink is dark, and the ground's level (in the shades of dark ink on a light
    ground) when the picture is clean, else None.

    A clean picture whose ground is one exact shade, and that shade the one along its edge,
    says which way its ink goes by itself. Otherwise the strokes are told from the ground by
    their thickness on the small copy surrounded by a margin of the shade along its edge: a
    digit that fills its picture (a tight crop) cuts the ground into pieces at the edge, and
    with the margin the ground surrounds the strokes as in any photo. ``ones_crop``:
    crop_of_a_one(small), where the caller has it already.
    """
    # Judged on the pixels themselves: shrinking the picture would average its noise away.
    sample = np.ascontiguousarray(gray[::2, ::2])
    edge = edge_shade(sample)
    grounds = {True: uniform_ground(sample), False: uniform_ground(255 - sample)}
    edge_like = {True: edge, False: 255 - edge}
    clean = [dark for dark, level in grounds.items()
             if level is not None and abs(level - edge_like[dark]) <= 1]
    if len(clean) == 1 and not ink_thicker_than_strokes(small, clean[0]):
        return clean[0], grounds[clean[0]]
    if not clean and light_sheet(small):
        return True, None  # a sheet on a table: a scene, whose ground is no one shade
    margin = ground_margin(small, pad, ones_crop)
    if len(clean) == 1:
        # A shadow across a photo with little noise splits its paper into two flat shades, and
        # the one along the edge, the shadow's, passes for a clean picture's ground with the
        # lit paper as its "ink", far thicker than strokes. Where the strokes' thickness then
        # says clearly that the ink goes the other way, no one level is the ground. So does a
        # table dark enough to clip to black around a sheet, where the thickness does not say
        # that the ink is light (a bold light digit, one solid shape too, it does).
        if not clean[0] and margin >= 0 and light_sheet(small):
            return True, None
        if abs(margin) <= CLEAN_DOUBT or (margin >= 0) == clean[0]:
            return clean[0], grounds[clean[0]]
        return margin >= 0, None
    dark = margin >= 0
    return dark, grounds[dark]


def light_sheet(small: np.ndarray) -> bool:
    """Whether the light shades of a small copy (Otsu's) are a sheet of paper, so the ink is
    dark. Where a sheet lies on a darker table, the table round it is as wide as the sheet,
    and how thick the two shades are beside each other (dark_ink_margin) cannot tell which is
    the ground. A sheet, seen square or at a slant, cut by the frame's edge or not, is one
    shape, neither a small part of the picture nor nearly all of it (SHEET_SHARE), that
    fills its convex hull and, the ink on it filled in, is thicker than any stroke (thickness
    over STROKE_THICKNESS): light strokes never are all that (a bold digit's loop leaves its
    hull far from full, a 1 is thin). The lit part of a dark board is that shape too, but
    its edge is light falling off or one straight shadow's edge: the sheet's is a sharp step
    all along that turns a corner within the picture, and nothing on a sheet is lighter than
    the sheet, where the lit board holds the light strokes."""
    blurred = cv2.medianBlur(small, 3)  # specks and JPEG noise are not structure
    _, light = cv2.threshold(blurred, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, labels, stats = components(light)
    if n <= 1 or light.all():
        return False
    # With no table, or too little of it, to speak of, the thickness decides as ever. The tests
    # run cheapest first.
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if not SHEET_SHARE <= stats[largest, cv2.CC_STAT_AREA] / light.size <= 1 - SHEET_SHARE:
        return False
    shape = (labels == largest).astype(np.uint8)
    on_it = blurred[shape > 0]
    sheet = median(on_it)
    step = sheet - median(blurred[light == 0])
    if np.count_nonzero(on_it > sheet + step / 2) > LIGHTER_MARKS * on_it.size:
        return False
    whole = filled(shape)  # the sheet with its ink
    if not (fills_its_hull(shape) and thickness(whole) > STROKE_THICKNESS):
        return False
    rim = outline(whole)
    if not turns_a_corner(rim):
        return False  # one straight edge: a shadow's, or the lit side of a board
    rise = cv2.morphologyEx(blurred, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    return median(rise[rim]) >= step / 2


def outline(shape: np.ndarray) -> np.ndarray:
    """The shape's outline (bool) within the picture: where the frame cuts it is no edge of it
    (erosion counts outside the frame as more of the shape)."""
    shape = shape.astype(np.uint8)
    return cv2.subtract(shape, cv2.erode(shape, np.ones((3, 3), np.uint8))) > 0


def turns_a_corner(rim: np.ndarray) -> bool:
    """Whether an outline (bool) is more than one straight line: its points spread across their
    main axis by at least STRAIGHT_SPREAD of their spread along it. A sheet's outline turns
    its corners; a shadow's edge, or the lit side of a board, runs straight across."""
    ys, xs = np.nonzero(rim)
    if len(xs) < 3:
        return False
    across, along = np.linalg.eigvalsh(np.cov(xs.astype(np.float32), ys.astype(np.float32)))
    return bool(np.sqrt(max(across, 0.0)) >= STRAIGHT_SPREAD * np.sqrt(max(along, 1e-6)))


def filled(shape: np.ndarray) -> np.ndarray:
    """A shape (uint8 0/1) with its holes filled: whatever the outside cannot reach."""
    h, w = shape.shape
    reach = np.zeros((h + 4, w + 4), np.uint8)
    outside = cv2.copyMakeBorder(1 - shape, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    cv2.floodFill(outside, reach, (0, 0), 0, 0, 0, 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    return 1 - reach[2:-2, 2:-2]


def ink_thicker_than_strokes(small: np.ndarray, dark: bool) -> bool:
    """Whether the shades Otsu puts on the ink's side of a small copy are thicker than a
    digit's strokes ever are (thickness over STROKE_THICKNESS)."""
    kind = cv2.THRESH_BINARY_INV if dark else cv2.THRESH_BINARY
    _, ink = cv2.threshold(small, 0, 1, kind + cv2.THRESH_OTSU)
    return thickness(ink) > STROKE_THICKNESS


def ground_margin(small: np.ndarray, pad: int, ones_crop: bool | None = None) -> float:
    """How clearly the ink is dark (> 0) or light (< 0) by the thickness of what surrounds the
    strokes (dark_ink_margin), on the small copy and on its shading divided out."""
    margin = dark_ink_margin(with_margin(small, pad))
    if not (crop_of_a_one(small) if ones_crop is None else ones_crop):
        # The shades as they are split a sheet whose light falls in two levels (a shadow's
        # edge across it) into light and shadow rather than ink and paper; the shades with
        # the shading divided out do not, but lose the strokes that fill a tight crop. Where
        # the two views disagree, the clearer one decides. A narrow crop of a 1 is too little
        # ground for the second view.
        margin += dark_ink_margin(with_margin(unshaded(small), pad))
    return margin


def with_margin(small: np.ndarray, pad: int) -> np.ndarray:
    """The small copy surrounded by ``pad`` px of the shade along its edge."""
    return cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                              value=edge_shade(small))


class InkMap(NamedTuple):
    ink: np.ndarray  # uint8 ink strength, 0 on the ground and off the sheet
    noise: float | None  # the paper's noise on the same scale; None for a clean picture
    sheet: np.ndarray | None  # the sheet searched (bool, on the small copy); None: all of it


def ink_map(gray: np.ndarray) -> InkMap:
    """Ink strength 0..255 relative to the local paper brightness (flat-field corrected).

    The paper is estimated by closing away the strokes on a small copy (more widely where that
    leaves the paper clearly quieter), or as one smooth surface under the whole picture where
    that is quieter still (a photo cropped close to a bold digit); dividing by it
    removes gradients, shadows and vignetting, so one threshold works across the frame. Only
    the sheet is searched: a textured table or a hand around it is not ink (a shadow's edge,
    which runs straight or which strokes cross, is no sheet's edge). Also returns the
    paper's own noise on the same 0..255 scale (a robust sigma: dim paper makes relative noise
    larger), None for a clean picture, and the sheet where one limits the search.
    """
    # The ground varies slowly and the strokes only need to be told from it: a small copy
    # (~80 px, a sixteenth of a 320 px working image's pixels) carries both. Its size was
    # chosen on validation pictures (bench/device_accuracy.py --digits validation): at 80 px
    # they read as at 120 (one digit more), in ~1 ms less of a 640×480 frame.
    small = small_copy(gray, GROUND_SIDE)
    sh, sw = small.shape
    pad = round(GROUND_MARGIN * max(sh, sw))
    ones_crop = crop_of_a_one(small)
    dark, level = polarity(gray, small, pad, ones_crop)
    paper_like = gray
    if not dark:
        paper_like, small = 255 - gray, 255 - small
    if level is None and ones_crop:
        # A crop of a narrow digit (a 1) is mostly stroke and its soft edge: too little ground
        # to show one exact shade, and to estimate a paper around the strokes. Its lightest
        # shade is the ground.
        level = int(percentiles(paper_like, (99,))[0])
    if level is not None:
        # A clean picture (a drawing, a digital crop): one level is the ground everywhere, and
        # nothing around it but more of the picture.
        return InkMap(ink_strength(against_paper(np.float32(level), smooth_of(paper_like))),
                      None, None)
    paper = close_strokes(small)
    # The sheet is searched for on the stroke-free ground of the picture continued beyond its
    # edge in its own shade: a table reaching the edge still reaches it, and a strip of table
    # along the edge narrower than the closing stays table (closed within the picture alone,
    # it takes the light of the sheet beside it, and joins the sheet).
    around = close_strokes(small, beyond=pad)
    region = paper_region(around)[pad : pad + sh, pad : pad + sw]
    # Only a sheet whose outline turns a corner within the picture limits the search. An edge
    # running straight across is a shadow's as likely as a sheet's (a sheet that shows one
    # edge fills the frame, and the strip of table beyond it runs along the frame's edge,
    # where what lies on it is refused as cut by the border); and strokes crossing from the
    # sheet into its surroundings make its edge a shadow's, as ink never crosses from a sheet
    # onto the table.
    shadow_edge = not region.all() and (
        not turns_a_corner(outline(region))
        or strokes_cross(small, around[pad : pad + sh, pad : pad + sw], region))
    if shadow_edge:
        region = np.ones_like(region)  # the step was a shadow's edge, not the sheet's
    smooth = smooth_of(paper_like)
    # The noise is judged on every fourth pixel each way: plenty for a spread, and it spares
    # a full-size comparison with a ground that is not taken.
    sample = np.ascontiguousarray(smooth[::4, ::4])
    noise = paper_noise(paper, region, sample)
    # A photo cropped close to its digit has strokes wider than the usual closing: what it
    # leaves of them counts as paper, and the paper looks noisy. A closing as wide as a
    # quarter of the picture clears them; it is taken only where the paper it leaves is
    # clearly quieter, since on a camera scene it also flattens real shading away.
    wide = close_strokes(small, wide=True)
    wide_noise = paper_noise(wide, region, sample)
    steps: np.ndarray | None = wide  # where the usual closing is taken (photo_contrast)
    if wide_noise < WIDE_GROUND_GAIN * noise:
        paper, noise, steps = wide, wide_noise, None
    # A bold digit cropped close leaves too little paper between its strokes for any closing,
    # however wide: one smooth surface under the whole picture is then the quieter ground. Both
    # are judged on every pixel, as the surface knows no sheet.
    # No smooth surface follows a shadow's hard edge: where a shadow's edge (shadow_edge) is a
    # step that the wide closing keeps, the surface would take the shadow for ink.
    surface = fitted_ground(small)
    if (surface is not None and shadow_edge and steps is not None
            and shadow_step(blurred_ground(paper), steps, region)):
        surface = None
    if surface is not None:
        everywhere = np.ones_like(region)
        surface_noise = paper_noise(surface, everywhere, sample)
        closing_noise = noise if region.all() else paper_noise(paper, everywhere, sample)
        if surface_noise <= closing_noise:
            paper, noise, region, steps = surface, surface_noise, everywhere, None
    # Ink that runs into the edge of the sheet goes on beyond it (candidates.cut_by_sheet).
    sheet = None if region.all() else region
    return InkMap(ink_strength(photo_contrast(paper, region, smooth, steps)), noise, sheet)


def _clear_of_edges(paper: np.ndarray) -> np.ndarray:
    """The paper pixels (flat) not next to a stroke: a stroke's blurred edge is part ink, and
    would pull the surface darker."""
    return cv2.erode(paper.astype(np.uint8), np.ones((3, 3), np.uint8)).ravel() > 0


@functools.lru_cache(maxsize=8)
def _quadratic_terms(h: int, w: int) -> np.ndarray:
    """1, x, y, x², xy, y² of each pixel of an h×w picture (x, y from -0.5 to 0.5), (h·w, 6)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / max(w - 1, 1) - 0.5, y / max(h - 1, 1) - 0.5
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1).reshape(-1, 6)


def fitted_ground(small: np.ndarray) -> np.ndarray | None:
    """The paper of a small copy (dark ink) as one smooth surface, a quadratic in x and y: light
    falling off across a photo, and vignetting, are that smooth. Fitted to the shades Otsu calls
    paper, then to those the surface itself calls paper (Otsu on each pixel's ratio to it), so
    a digit that covers most of the picture pulls it no darker; in both, only paper clear of
    the strokes' edges. A surface this smooth is fitted as well on a copy of FIT_SIDE px.
    None where the picture is not all paper: too little is left to fit, or the paper does not
    reach every side of it (a sheet in surroundings, whose edge no smooth surface follows)."""
    tiny = small_copy(small, FIT_SIDE)
    terms = _quadratic_terms(*tiny.shape)
    shades = tiny.astype(np.float32).ravel()
    level, _ = cv2.threshold(tiny, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    paper = _clear_of_edges(tiny > level)
    coefficients = None
    for _ in range(GROUND_FIT_ROUNDS):
        if np.count_nonzero(paper) < MIN_FIT_PIXELS:
            break
        # The least-squares fit's normal equations, 6×6 however many pixels are paper (lstsq:
        # paper all in one row would leave them singular).
        chosen = terms[paper]
        coefficients = np.linalg.lstsq(chosen.T @ chosen, chosen.T @ shades[paper], rcond=None)[0]
        ratio = shades / np.maximum(terms @ coefficients, 1.0)
        ratio8 = np.clip(ratio * 128.0, 0, 255).astype(np.uint8)
        cut, _ = cv2.threshold(ratio8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        paper = _clear_of_edges(ratio8.reshape(tiny.shape) > cut)
    if coefficients is None or not _reaches_every_side(paper.reshape(tiny.shape)):
        return None
    return (_quadratic_terms(*small.shape) @ coefficients).reshape(small.shape)


def _reaches_every_side(paper: np.ndarray) -> bool:
    """Whether the paper touches all four sides of the picture: a close crop is paper up to
    its edges between the strokes, a sheet on a table is not on the table's side."""
    return bool(paper[0].any() and paper[-1].any() and paper[:, 0].any() and paper[:, -1].any())


def smooth_of(paper_like: np.ndarray) -> np.ndarray:
    """The picture (dark ink) with its pixel noise softened, in floats."""
    return cv2.GaussianBlur(paper_like, (3, 3), 0).astype(np.float32)


def against_paper(paper: np.ndarray | np.float32, smooth: np.ndarray) -> np.ndarray:
    """How much darker than the paper under it each pixel is, as a share of the paper's
    brightness (dim paper is not allowed to amplify noise without bound)."""
    return (paper - smooth) / np.maximum(paper, 16.0)


def photo_contrast(paper_small: np.ndarray, region: np.ndarray, smooth: np.ndarray,
                   steps: np.ndarray | None = None) -> np.ndarray:
    """The ink contrast of a photo (``smooth``, at any scale) against a stroke-free ground
    estimated on a small copy, zero outside the sheet. ``steps``: the same picture closed more
    widely (close_strokes(wide=True)), where the ground should keep a shadow's hard edge."""
    h, w = smooth.shape
    paper = blurred_ground(paper_small)
    # The blur spreads a hard shadow's edge (the phone's, a hand's): on its dark side the
    # ground comes out lighter than the paper, and a band along the edge reads as ink. A
    # closing keeps any step wider than itself, and the wide one (``steps``) also clears what
    # the usual one leaves of a bold stroke; smoothed without crossing steps, it is the darker
    # of the two grounds only on the dark side of a step wider than a quarter of the picture,
    # so a shadow's, and nowhere else. That smoothing costs a quarter of a camera frame's
    # reading, so it is done only where the sheet has such a step.
    if steps is not None and shadow_step(paper, steps, region):
        paper = np.minimum(paper, smooth_keeping_steps(steps, blur_size(paper_small)))
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    contrast = against_paper(paper, smooth)
    if not region.all():
        contrast *= cv2.resize(region.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    return contrast


def blur_size(paper_small: np.ndarray) -> int:
    """The Gaussian's width that smooths a small copy's closed ground: a fifth of its shorter
    side."""
    return odd(min(paper_small.shape) / 5)


def blurred_ground(paper_small: np.ndarray) -> np.ndarray:
    """A small copy's closed ground with its noise and blockiness smoothed, in floats (OpenCV's
    exact 8-bit blur is several times slower at this width)."""
    k = blur_size(paper_small)
    return cv2.GaussianBlur(paper_small.astype(np.float32), (k, k), 0)


def shadow_step(blurred: np.ndarray, wide: np.ndarray, region: np.ndarray) -> bool:
    """Whether the widely closed ground (``wide``) is more than STEP_LOG darker than the
    blurred usual one anywhere on the sheet: only on the dark side of a step wider than a
    quarter of the picture, a shadow's, can it be."""
    return bool((region & (wide < blurred * np.exp(-STEP_LOG))).any())


def smooth_keeping_steps(ground: np.ndarray, k: int) -> np.ndarray:
    """A small ground's noise smoothed as a k×k Gaussian would, but not across a step of more
    than STEP_LOG of its light (a bilateral filter on the log of the light, so a step counts
    alike on dim and bright paper)."""
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8  # what cv2.GaussianBlur takes for a k×k kernel
    light = np.log(np.maximum(ground, 1).astype(np.float32))
    return np.exp(cv2.bilateralFilter(light, k, STEP_LOG, sigma))


def paper_noise(paper_small: np.ndarray, region: np.ndarray, sample: np.ndarray) -> float:
    """The paper's noise (sigma on the 0..255 scale) of a photo sampled as ``sample`` against
    a stroke-free ground estimated on a small copy."""
    return paper_statistics(photo_contrast(paper_small, region, sample) * 255.0)[1]


def ink_strength(contrast: np.ndarray) -> np.ndarray:
    """Contrast as ink strength 0..255."""
    return np.clip(contrast * 255.0, 0, 255).astype(np.uint8)


def paper_statistics(values: np.ndarray) -> tuple[float, float]:
    """The paper's typical level and noise (sigma) among ``values`` that are partly ink.

    Ink only lengthens the upper tail, and fills up to half of a tight crop, where a median
    and MAD would land in the ink: the lower tail is the paper's own. For normal noise the
    10th and 30th percentiles lie 0.757 sigma apart and the median 0.524 sigma above the 30th.
    """
    low, high = percentiles(values, (10, 30))
    sigma = float(high - low) / 0.757
    return float(high) + 0.524 * sigma, sigma
