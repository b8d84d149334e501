"""Which way the ink goes: dark on a light ground or light on a dark one, decided by what
surrounds the strokes (their thickness, a clean picture's exact ground, a sheet lying on a
table), and the ground's level where the picture is clean."""

from __future__ import annotations

import cv2
import numpy as np

from device.preprocess.measure import (
    convex_hull,
    fills_its_hull,
    labelled,
    largest,
    median,
    odd,
    shade_counts,
    shade_percentiles,
)
from device.preprocess.sheet import SHEET_SHARE, filled, outline, turns_a_corner

# A picture whose ground is one exact shade (±1) over this share of it is clean (not a photo).
CLEAN_GROUND_SHARE = 0.5
# ...unless the strokes' thickness says the other polarity more clearly than this (polarity).
CLEAN_DOUBT = 1.0
# A clean picture's ink thicker than this for its size may be no ink (thickness: ~0.1 for a
# digit's strokes, 0.3 and more for a sheet's half): only then is the costlier margin asked.
STROKE_THICKNESS = 0.2
# ...and ink thicker than this is none: its widest inscribed circle spans most of it, as it
# does a shadow's or a ground's, where the boldest digits whose loops filled in (a thick
# marker's, a blurred crop's) stay below 0.38 on validation pictures, shadows from 0.42 up.
BOLDEST_DIGIT = 0.4
# Light marks over this share of a light shape show that it is no sheet (light_sheet).
LIGHTER_MARKS = 0.005
# The shading is divided out (unshaded) against a median this share of the small copy's
# shorter side wide: wider than twice any stroke where the picture has room for ground, and
# the ground lands on FLAT_GROUND, leaving room for light strokes above it.
FLAT_WINDOW = 0.5
FLAT_GROUND = 160
# Otsu's two shades closer than this (of 255) are light falling off, a shadow or paper texture
# split in two, not ink and its ground: strokes stand out from their ground.
DISTINCT_SHADES = 48


def dark_ink_margin(small: np.ndarray, pad: int) -> float:
    """How clearly the ink is dark on a light ground (> 0) rather than light strokes on a dark
    ground (< 0), judged on a small copy of the picture (about GROUND_SIDE px) surrounded by
    ``pad`` (≥ 1) px of the shade along its edge (with_margin): the log of how much thicker
    the light shades are than half the dark's. 0 where the two shades differ too little to
    tell, which counts as dark ink.

    Decided by what surrounds the strokes, not by which shade covers more of the picture:
    strokes are thin everywhere, the ground around them (paper, a board, a black canvas) is
    wide somewhere. Light strokes are assumed only when the light in the picture is far thinner
    than the dark; a light sheet on a dark table is thick too, and dark ink is the rule there,
    as on a blank picture.
    """
    # Specks and JPEG noise are not structure. A median leaves the margin's one shade as it
    # is, so only the picture and the margin's first px around it are blurred.
    blurred = cv2.copyMakeBorder(cv2.medianBlur(with_margin(small, 1), 3),
                                 pad - 1, pad - 1, pad - 1, pad - 1, cv2.BORDER_REPLICATE)
    light, apart = otsu_shades(blurred)
    if apart < DISTINCT_SHADES:
        return 0.0
    # Light strokes on a dark ground are at most half as thick as that ground (0.48 at most on
    # MNIST-derived pictures); a sheet is more than twice as thick as its ink (2.4 at least
    # on camera-like frames).
    return float(np.log(max(thickness(light), 1e-3) / max(0.5 * thickness(1 - light), 1e-3)))


def otsu_shades(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Otsu's split of an 8-bit picture: the mask of its lighter shades (0/1) and how far apart
    the two sides' median shades are (0 where one side is empty)."""
    level, light = cv2.threshold(image, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    counts = shade_counts(image)
    light_counts = np.where(np.arange(256) > level, counts, 0)
    dark_counts = counts - light_counts
    if not light_counts.any() or not dark_counts.any():
        return light, 0.0
    light_shade = shade_percentiles(light_counts, (50,))[0]
    dark_shade = shade_percentiles(dark_counts, (50,))[0]
    return light, light_shade - dark_shade


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
    n, labels = labelled(mask)
    if n <= 1:
        return 0.0
    shape = cv2.compare(labels, largest(labels, n)[0], cv2.CMP_EQ)
    _, _, width, height = cv2.boundingRect(shape)
    # Outside the picture counts as more of the same: a stroke running off the edge stays thin.
    padded = cv2.copyMakeBorder(shape, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    radius = float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())
    return radius / max(width, height)


def crop_of_a_one(small: np.ndarray) -> bool:
    """Whether a picture (its small copy) is a crop of a narrow digit such as a 1: narrow
    (narrow_crop), with both its darker and its lighter shades (Otsu's) running from near its
    top to near its bottom, as the stroke and the ground beside it do, and the two shades
    distinct (DISTINCT_SHADES), as ink and its ground are, and one of them as thin as strokes
    (STROKE_THICKNESS), as the stroke is. A narrow photo of paper with a digit somewhere in it
    is no such crop, even where light falling off across it, or a shadow's edge down it,
    splits it into two such halves: both are thicker than strokes. The same either way the
    ink goes."""
    if not narrow_crop(small.shape):
        return False
    light, apart = otsu_shades(small)
    return (apart >= DISTINCT_SHADES and _spans_height(light) and _spans_height(1 - light)
            and min(thickness(light), thickness(1 - light)) <= STROKE_THICKNESS)


def _spans_height(mask: np.ndarray) -> bool:
    rows = np.flatnonzero(mask.any(axis=1))
    return len(rows) > 0 and rows[-1] - rows[0] + 1 >= 0.8 * mask.shape[0]


def narrow_crop(shape: tuple[int, int]) -> bool:
    """A picture less than half as wide as it is tall: no camera or phone frames like that (a
    phone held upright is 9:16 at most), a crop of a narrow digit such as a 1 does."""
    h, w = shape
    return w < h / 2


def uniform_ground(pixels: np.ndarray) -> int | None:
    """The ground's level when the picture is clean (dark ink assumed): a drawing, a digital
    crop, an MNIST or USPS file, a scan saturated to white. Most of its ground is one exact
    shade, however little ground a tight crop leaves; a photo's ground never is (sensor noise,
    light falling off), and needs flat-fielding. None when the picture is not clean."""
    level, _ = cv2.threshold(pixels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    counts = shade_counts(pixels)  # all that follows needs only these
    shades = np.arange(256)
    ground = counts * (shades > level)
    if ground.sum() < 0.05 * pixels.size:
        return None
    mode = int(np.argmax(ground))
    # Leave out the soft edges of the strokes: in a tight crop they may be most of the ground.
    ground = ground * (shades > (level + mode) / 2)
    share = ground[max(0, mode - 1) : mode + 2].sum() / max(1, ground.sum())
    return mode if share >= CLEAN_GROUND_SHARE else None


def lightest_is_ground(view: np.ndarray, level: int) -> bool:
    """Whether nothing in a picture (``view``: in the shades of dark ink on a light ground)
    is distinctly lighter than its ground's level (by DISTINCT_SHADES, over LIGHTER_MARKS of
    it): a clean picture's ground is its lightest shade. Where a flat shadow along the edge of
    a low-noise photo is taken for the ground of light ink, the lit paper for that ink, the
    dark digit is lighter still in that view."""
    return np.count_nonzero(view > level + DISTINCT_SHADES) <= LIGHTER_MARKS * view.size


def shadow_with_ink(small: np.ndarray, dark: bool) -> bool:
    """Whether what Otsu puts on the ink's side of a small copy, ink thicker than strokes, is
    a shadow with ink in it: split again, its lighter shades, distinct from its darker ones
    (DISTINCT_SHADES), are themselves thicker than strokes, a ground with marks on it. A bold
    digit's ink side splits into its fill and its soft edges, and the edges are thin."""
    view = small if dark else 255 - small
    level, _ = cv2.threshold(view, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink_side = view[view <= level]
    within, _ = cv2.threshold(ink_side, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    lighter = (view > within) & (view <= level)
    darker = view[view <= within]
    if not lighter.any() or not darker.size:
        return False
    apart = median(view[lighter]) - median(darker)
    return apart >= DISTINCT_SHADES and thickness(lighter.astype(np.uint8)) > STROKE_THICKNESS


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
    views = {True: sample, False: 255 - sample}  # in the shades of dark ink on a light ground
    grounds = {dark: uniform_ground(view) for dark, view in views.items()}
    edge_like = {True: edge, False: 255 - edge}
    clean = [dark for dark, level in grounds.items()
             if level is not None and abs(level - edge_like[dark]) <= 1
             and lightest_is_ground(views[dark], level)]
    thick = ink_thickness(small, clean[0]) if len(clean) == 1 else 0.0
    if len(clean) == 1 and thick <= STROKE_THICKNESS:
        return clean[0], grounds[clean[0]]
    if not clean and light_sheet(small):
        return True, None  # a sheet on a table: a scene, whose ground is no one shade
    margin, shaded = ground_margin(small, pad, ones_crop)
    if len(clean) == 1:
        # A shadow across a photo with little noise splits its paper into two flat shades, and
        # the one along the edge, the shadow's, passes for a clean picture's ground with the
        # lit paper as its "ink", far thicker than strokes. Where the strokes' thickness then
        # says clearly that the ink goes the other way, no one level is the ground. So does a
        # table dark enough to clip to black around a sheet, where the thickness does not say
        # that the ink is light (a bold light digit, one solid shape too, it does), or where
        # the light shape is no one exact shade either, as a drawn stroke's inside is: paper
        # in a photo, around which a dark table flat enough to pass for a clean ground has
        # the thickness of the ground once the frame's edge is continued in its shade.
        if not clean[0] and (margin >= 0 or grounds[True] is None) and light_sheet(small):
            return True, None
        # Nor is a picture clean whose shades are a lit part and a shadow (shadow_edge):
        # its one exact shade is the shadow's, or the lit paper's, and the flat view alone
        # tells the ink.
        if not shaded and (abs(margin) <= CLEAN_DOUBT or (margin >= 0) == clean[0]):
            # Thick ink on one exact shade: a bold digit, unless a shadow with the ink in it,
            # or a shadow as thick as no digit is (the ink a little darker than it, so that
            # split again it stays one).
            shadow = thick > BOLDEST_DIGIT or shadow_with_ink(small, clean[0])
            return clean[0], None if shadow else grounds[clean[0]]
        return margin >= 0, None
    dark = margin >= 0
    # Where no exact shade is also the shade along the edge (a tight crop's strokes fill its
    # edge), or both polarities' are, the thickness decided the ink, and the ground's exact
    # shade is still its level, unless what that leaves as ink is thicker than strokes: a
    # shadow across a photo with little noise, whose lit paper is one exact shade while the
    # shadow fills the edge. That level would make the whole shadow ink.
    level = grounds[dark]
    if level is not None and ink_thickness(small, dark) > STROKE_THICKNESS:
        level = None
    return dark, level


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
    n, labels = labelled(light)
    if n <= 1 or light.all():
        return False
    # With no table, or too little of it, to speak of, the thickness decides as ever. The tests
    # run cheapest first.
    biggest, area = largest(labels, n)
    if not SHEET_SHARE <= area / light.size <= 1 - SHEET_SHARE:
        return False
    shape = (labels == biggest).astype(np.uint8)
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


def ink_thickness(small: np.ndarray, dark: bool) -> float:
    """How thick the shades Otsu puts on the ink's side of a small copy are (thickness):
    over STROKE_THICKNESS, thicker than a digit's strokes ever are."""
    kind = cv2.THRESH_BINARY_INV if dark else cv2.THRESH_BINARY
    _, ink = cv2.threshold(small, 0, 1, kind + cv2.THRESH_OTSU)
    return thickness(ink)


def ground_margin(small: np.ndarray, pad: int,
                  ones_crop: bool | None = None) -> tuple[float, bool]:
    """How clearly the ink is dark (> 0) or light (< 0) by the thickness of what surrounds the
    strokes (dark_ink_margin), on the small copy and on its shading divided out; and whether
    the small copy's shades are a lit part and a shadow (shadow_edge)."""
    margin = dark_ink_margin(small, pad)
    if not (crop_of_a_one(small) if ones_crop is None else ones_crop):
        # The shades as they are split a sheet whose light falls in two levels (a shadow's
        # edge across it) into light and shadow rather than ink and paper; the shades with
        # the shading divided out do not, but lose the strokes that fill a tight crop. Where
        # the two views disagree, the clearer one decides, unless the first split is known to
        # be light and shadow: then it says nothing of the ink (the lit part, a sliver beside a
        # wide shadow, passed for light strokes), and only the second view speaks. A narrow
        # crop of a 1 is too little ground for the second view.
        flat = unshaded(small)
        edge = shadow_edge(small, flat)
        if edge is None:
            return margin + dark_ink_margin(flat, pad), False
        # The second view's window, across the edge, mixes light and shadow: along the edge
        # the lit side comes out lighter than its ground, a band that passed for light
        # strokes. The band, a stroke's width either side of the edge, is taken as ground.
        band = cv2.dilate(edge.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        return dark_ink_margin(np.where(band, np.uint8(FLAT_GROUND), flat), pad), True
    return margin, False


def shadow_edge(small: np.ndarray, flat: np.ndarray) -> np.ndarray | None:
    """The edge of a shadow across a small copy (bool), where Otsu's two shades of it are one
    ground, part of it in light and part in shadow, not ink and its ground: both are thicker
    than strokes (STROKE_THICKNESS), with the shading divided out (``flat``: unshaded) their
    medians are no longer distinct (DISTINCT_SHADES), and the lighter part's hull has one
    straight edge in the picture, a shadow's, which is returned. Where one of the two is ink,
    it is thin; a sheet on a table is two grounds too, but its outline turns a corner. None
    where the shades are not a lit part and a shadow. The checks run cheapest first."""
    light, apart = otsu_shades(cv2.medianBlur(small, 3))
    if apart < DISTINCT_SHADES:
        return None
    lit = light > 0
    if abs(median(flat[lit]) - median(flat[~lit])) >= DISTINCT_SHADES:
        return None
    if min(thickness(light), thickness(1 - light)) <= STROKE_THICKNESS:
        return None
    edge = outline(convex_hull(lit))
    return None if turns_a_corner(edge) else edge


def with_margin(small: np.ndarray, pad: int) -> np.ndarray:
    """The small copy surrounded by ``pad`` px of the shade along its edge."""
    return cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                              value=edge_shade(small))
