"""What surrounds the strokes: the paper's brightness under them, and the ink map.

With the ink's polarity (polarity.py) and the sheet (sheet.py) known, every stage after this
one sees ink as bright on a dark, flat ground: the ink map says how much darker (or lighter)
than its local ground each pixel is."""

from __future__ import annotations

import functools
from typing import NamedTuple

import cv2
import numpy as np

from device.preprocess.measure import (
    components,
    convex_hull,
    disk,
    odd,
    percentiles,
    small_copy,
)
from device.preprocess.polarity import crop_of_a_one, polarity, thickness
from device.preprocess.sheet import outline, paper_region, turns_a_corner

# The ground is estimated on a copy this many px on its longer side (ink_map).
GROUND_SIDE = 80
# The ground is continued this share of the picture's longer side beyond its edges (ink_map).
GROUND_MARGIN = 0.25
# A photo's ground is closed that wide only where its paper noise falls below this share of
# the usual closing's (ink_map): strokes left in the ground are noise, real shading is not.
WIDE_GROUND_GAIN = 0.8
# Sure ink is at least this much darker than its paper (of 255, on the ink map's scale): paper
# texture never is, and Otsu alone always splits, even blank paper (threshold_ink,
# strokes_cross).
INK_FLOOR = 40.0
# A stroke's faint parts, joined to its sure ink, are followed down to this share of the floor.
FAINT_INK = 0.75
# The smooth ground (fitted_ground) is fitted twice: to the paper Otsu finds, then to the paper
# the first surface finds; on a copy this many px on its longer side (as good as 40 or 80 px on
# validation pictures, in less time: six unknowns need few pixels).
GROUND_FIT_ROUNDS = 2
FIT_SIDE = 24
# Fewer paper pixels than this (of the FIT_SIDE copy) fit no surface: four per unknown.
MIN_FIT_PIXELS = 24
# What a smooth surface leaves darker than itself is a shadow it cannot follow, not strokes,
# where it is as thick as the ground around a digit is (polarity.thickness: ~0.1 for strokes,
# 0.3 for a sheet or a ground).
GROUND_THICKNESS = 0.3
# The ground that keeps steps (smooth_keeping_steps) is not smoothed across a step of more
# than about this much of the light (in log units, ~10%): paper noise is a few percent, a
# shadow takes a third of the light or more.
STEP_LOG = 0.1


def strokes_cross(small: np.ndarray, paper: np.ndarray, region: np.ndarray) -> bool:
    """Whether a stroke runs from well inside the sheet across its edge to well inside what was
    taken for its surroundings: then the edge is a shadow's (the phone's, a hand's) on the same
    paper, as ink never crosses a sheet's edge onto the table. Strokes are what Otsu finds
    darker than the stroke-free ground of the small copy (``paper``, closed as if the picture
    went on past its edge, close_strokes' ``beyond``, so a strip of table along the edge is no
    stroke), and dark enough to be ink where it is faintest (FAINT_INK of INK_FLOOR, as
    threshold_ink follows a stroke): Otsu alone splits blank paper's texture into blotches,
    some across the sheet's edge. "Well inside" is two pixels from the edge, where a sheet's
    own blurred rim is not. A long straight bar across the edge (turns_a_corner false: its
    pixels spread across their main axis by under STRAIGHT_SPREAD of their spread along it)
    is a pen or a pencil lying across it, which says nothing of a shadow: strokes that cross
    a shadow's edge bend somewhere, or are short for their width (a long thin 1 across one
    is neither, and leaves the edge taken for the sheet's)."""
    ratio = ink_strength(against_paper(paper.astype(np.float32), small.astype(np.float32)))
    otsu, _ = cv2.threshold(ratio, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    strokes = (ratio > max(otsu, FAINT_INK * INK_FLOOR)).astype(np.uint8)
    n, labels, _ = components(strokes)
    if n < 2:
        return False
    deep = np.ones((5, 5), np.uint8)
    inside = cv2.erode(region.astype(np.uint8), deep).astype(bool)
    outside = cv2.erode((~region).astype(np.uint8), deep).astype(bool)
    on_both = np.zeros(n, bool)
    on_both[np.unique(labels[inside & (labels > 0)])] = True
    crossing = np.unique(labels[outside & (labels > 0)])
    return any(on_both[i] and turns_a_corner(labels == i) for i in crossing)


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


def on_the_picture(continued: np.ndarray, pad: int) -> np.ndarray:
    """The picture's own part of one continued ``pad`` px past each edge (close_strokes'
    ``beyond``)."""
    return continued[pad : continued.shape[0] - pad, pad : continued.shape[1] - pad]


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
    region = on_the_picture(paper_region(around), pad)
    within = on_the_picture(around, pad)  # the same closing, on the picture
    # Only a sheet whose outline turns a corner within the picture limits the search. An edge
    # running straight across is a shadow's as likely as a sheet's (a sheet that shows one
    # edge fills the frame, and the strip of table beyond it runs along the frame's edge,
    # where what lies on it is refused as cut by the border); and strokes crossing from the
    # sheet into its surroundings make its edge a shadow's, as ink never crosses from a sheet
    # onto the table (a pen lying across it does: strokes_cross leaves straight bars out).
    # A sheet is convex, and its outline is its hull's: a bold digit on the lit side of a
    # shadow's edge, which the closing leaves joined to the shadow, cuts a bay into the lit
    # part, whose outline then turned a corner around it.
    shadow_edge = not region.all() and (
        not turns_a_corner(outline(convex_hull(region)))
        or strokes_cross(small, within, region))
    if shadow_edge:
        region = np.ones_like(region)  # the step was a shadow's edge, not the sheet's
    smooth = smooth_of(paper_like)
    # The noise is judged on every fourth pixel each way: plenty for a spread, and it spares
    # a full-size comparison with a ground that is not taken.
    sample = np.ascontiguousarray(smooth[::4, ::4])
    # Each closed ground is judged, and read against, blurred (blurred_ground): blurred once.
    blurred = blurred_ground(paper)
    noise = paper_noise(blurred, region, sample)
    # A photo cropped close to its digit has strokes wider than the usual closing: what it
    # leaves of them counts as paper, and the paper looks noisy. A closing as wide as a
    # quarter of the picture clears them; it is taken only where the paper it leaves is
    # clearly quieter, since on a camera scene it also flattens real shading away.
    wide = close_strokes(small, wide=True)
    wide_blurred = blurred_ground(wide)
    wide_noise = paper_noise(wide_blurred, region, sample)
    steps: np.ndarray | None = wide  # the ground that keeps a shadow's step (photo_contrast)
    wide_taken = wide_noise < WIDE_GROUND_GAIN * noise
    if wide_taken:
        blurred, noise = wide_blurred, wide_noise
        # The blur of the wide ground spreads a shadow's step as the usual one's does, but what
        # it keeps of a close crop's bold strokes is no step to keep: its steps are kept only
        # where the picture has a shadow's edge, and then closed as widely on the picture
        # continued past its edge: a strip of shadow along the edge narrower than the wide
        # closing goes on there, where within the picture alone it filled with the light beside
        # it, and joined the digit as ink.
        steps = (on_the_picture(close_strokes(small, wide=True, beyond=pad), pad)
                 if shadow_edge else None)
    elif shadow_edge:
        # A shadow's step where it meets the picture's edge: closed within the picture alone,
        # a wedge of shadow in a corner narrower than the closing fills with the light beside
        # it, and so does the wide closing; the picture continued past its edge keeps it.
        steps = within
    # A bold digit cropped close leaves too little paper between its strokes for any closing,
    # however wide: one smooth surface under the whole picture is then the quieter ground. Both
    # are judged on every pixel, as the surface knows no sheet.
    # No smooth surface follows a shadow's hard edge: where a shadow's edge (shadow_edge) is a
    # step that the wide closing keeps, the surface would take the shadow for ink; and where
    # what the surface leaves darker than itself is as thick as a ground (leaves_a_shadow),
    # whether or not a step was found, it is a shadow the surface did not follow.
    surface = fitted_ground(small)
    if (surface is not None and shadow_edge and not wide_taken
            and shadow_step(blurred, wide, region)):
        surface = None
    if surface is not None:
        everywhere = np.ones_like(region)
        surface_blurred = blurred_ground(surface)
        surface_noise = paper_noise(surface_blurred, everywhere, sample)
        closing_noise = noise if region.all() else paper_noise(blurred, everywhere, sample)
        if surface_noise <= closing_noise and not leaves_a_shadow(small, surface):
            blurred, noise, region, steps = surface_blurred, surface_noise, everywhere, None
    # Ink that runs into the edge of the sheet goes on beyond it (candidates.cut_by_sheet).
    sheet = None if region.all() else region
    contrast = photo_contrast(blurred, region, smooth, steps, light_ink=not dark)
    return InkMap(ink_strength(contrast), noise, sheet)


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
        # The least-squares fit's normal equations, 6×6 however many pixels are paper, solved
        # through their SVD (paper all in one row would leave them singular): OpenCV's solver,
        # in a fifth of np.linalg.lstsq's time at this size.
        chosen = terms[paper]
        _, solution = cv2.solve(chosen.T @ chosen, chosen.T @ shades[paper], flags=cv2.DECOMP_SVD)
        coefficients = solution.ravel()
        ratio = shades / np.maximum(terms @ coefficients, 1.0)
        ratio8 = np.clip(ratio * 128.0, 0, 255).astype(np.uint8)
        cut, _ = cv2.threshold(ratio8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        paper = _clear_of_edges(ratio8.reshape(tiny.shape) > cut)
    if coefficients is None or not _reaches_every_side(paper.reshape(tiny.shape)):
        return None
    return (_quadratic_terms(*small.shape) @ coefficients).reshape(small.shape)


def leaves_a_shadow(small: np.ndarray, surface: np.ndarray) -> bool:
    """Whether what the smooth surface under a small copy (dark ink) leaves darker than itself
    (Otsu's split of the ink map it makes) is as thick as a ground (GROUND_THICKNESS): a shadow
    across the paper, whose hard edge no smooth surface follows, however quiet the paper it
    leaves elsewhere. A bold digit's strokes are never that thick."""
    ink = ink_strength(against_paper(surface.astype(np.float32), small.astype(np.float32)))
    _, darker = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return thickness(darker) >= GROUND_THICKNESS


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


def light_against_ground(ground: np.ndarray, smooth: np.ndarray, typical: float) -> np.ndarray:
    """against_paper for light ink, the picture and its ground inverted (255 - shade, as
    ink_map reads light ink): how much lighter than its ground each pixel is, as a share of
    the ground's own light, scaled to equal against_paper where the ground is at its
    ``typical`` (inverted) level. Light multiplies the ink and the board beneath it alike,
    so a light stroke in a shadow is as many times lighter than the board as in the light;
    inverted, against_paper's difference over the inverted ground shrinks with the light, and
    the stroke's part in the shadow faded out of the threshold."""
    light = 255.0 - ground
    scale = max(255.0 - typical, 16.0) / max(typical, 16.0)
    return (ground - smooth) / np.maximum(light, 16.0) * scale


def photo_contrast(paper: np.ndarray, region: np.ndarray, smooth: np.ndarray,
                   steps: np.ndarray | None = None, light_ink: bool = False) -> np.ndarray:
    """The ink contrast of a photo (``smooth``, at any scale) against a stroke-free ground
    estimated on a small copy (``paper``: blurred_ground of it), zero outside the sheet.
    ``steps``: the same picture closed so as to keep a shadow's hard edge (the wide closing,
    or a closing of the picture continued past its edge), where the ground should keep
    it; ``light_ink``: the picture is inverted light ink (light_against_ground)."""
    h, w = smooth.shape
    # The blur spreads a hard shadow's edge (the phone's, a hand's): on its dark side the
    # ground comes out lighter than the paper, and a band along the edge reads as ink. A
    # closing keeps any step wider than itself, and the wide one also clears what the usual
    # one leaves of a bold stroke; smoothed without crossing steps, it is the darker of the two
    # grounds only on the dark side of a step wider than a quarter of the picture, so a
    # shadow's, and nowhere else. Where the picture is known to have a shadow's edge, the
    # steps kept are those of the picture continued past its edge, closed as its paper was
    # (ink_map).
    # That smoothing costs a quarter of a camera frame's reading, so it is done only where
    # the sheet has such a step.
    stepped = steps is not None and shadow_step(paper, steps, region)
    if stepped:
        paper = np.minimum(paper, smooth_keeping_steps(steps, blur_size(paper)))
    ground = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    # Light ink is read as light falls on it only across a shadow's step: elsewhere the light
    # on a board varies little, and read so, clean light-on-black pictures lost digits.
    if light_ink and stepped:
        contrast = light_against_ground(ground, smooth, typical=float(np.median(paper)))
    else:
        contrast = against_paper(ground, smooth)
    if not region.all():
        contrast *= cv2.resize(region.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    return contrast


def blur_size(paper_small: np.ndarray) -> int:
    """The Gaussian's width that smooths a small copy's closed ground (or one of its size): a
    fifth of its shorter side."""
    return odd(min(paper_small.shape) / 5)


def blurred_ground(paper_small: np.ndarray) -> np.ndarray:
    """A small copy's closed ground with its noise and blockiness smoothed, in floats (OpenCV's
    exact 8-bit blur is several times slower at this width)."""
    k = blur_size(paper_small)
    return cv2.GaussianBlur(paper_small.astype(np.float32), (k, k), 0)


def shadow_step(blurred: np.ndarray, steps: np.ndarray, region: np.ndarray) -> bool:
    """Whether a closed ground (``steps``) is more than STEP_LOG darker than the blurred
    ground anywhere on the sheet: on the dark side of a step that the blur spread. Of the
    widely closed ground, only a step wider than a quarter of the picture, a shadow's, can
    be."""
    return bool((region & (steps < blurred * np.exp(-STEP_LOG))).any())


def smooth_keeping_steps(ground: np.ndarray, k: int) -> np.ndarray:
    """A small ground's noise smoothed as a k×k Gaussian would, but not across a step of more
    than STEP_LOG of its light (a bilateral filter on the log of the light, so a step counts
    alike on dim and bright paper)."""
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8  # what cv2.GaussianBlur takes for a k×k kernel
    light = np.log(np.maximum(ground, 1).astype(np.float32))
    return np.exp(cv2.bilateralFilter(light, k, STEP_LOG, sigma))


def paper_noise(paper: np.ndarray, region: np.ndarray, sample: np.ndarray) -> float:
    """The paper's noise (sigma on the 0..255 scale) of a photo sampled as ``sample`` against
    a stroke-free ground estimated on a small copy (``paper``: blurred_ground of it)."""
    return paper_statistics(photo_contrast(paper, region, sample) * 255.0)[1]


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
