"""Continental styles: a crossed 7 and a flagged 1 drawn onto real MNIST digits, nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from train.data import Split, load_mnist
from train.styles import INK, add_continental_styles, cross_seven, flag_one


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> Split:
    mnist = load_mnist(mnist_dir, download=False)
    return Split(mnist.train.x[:2000], mnist.train.y[:2000])


def _first(digits: Split, digit: int) -> np.ndarray:
    return digits.x[np.flatnonzero(digits.y == digit)[0], ..., 0]


def test_a_crossed_seven_gains_a_bar_across_its_middle(digits: Split) -> None:
    seven = _first(digits, 7)
    crossed = cross_seven(seven, np.random.default_rng(0))
    added = (crossed > INK) & ~(seven > INK)
    rows = np.flatnonzero(seven.max(axis=1) > INK)
    added_rows = np.flatnonzero(added.any(axis=1))
    assert added.sum() >= 6  # a visible stroke, not a speck
    assert added_rows.min() > rows[0] + 0.3 * (rows[-1] - rows[0])  # not on the top bar
    assert added_rows.max() < rows[0] + 0.75 * (rows[-1] - rows[0])  # nor at the foot
    assert np.all(crossed >= seven)  # ink is only ever added


def test_a_flagged_one_gains_a_stroke_down_to_the_left_of_its_top(digits: Split) -> None:
    one = _first(digits, 1)
    flagged = flag_one(one, np.random.default_rng(0))
    added = (flagged > INK) & ~(one > INK)
    top = np.flatnonzero(one.max(axis=1) > INK)[0]
    top_x = np.flatnonzero(one[top] > INK).mean()
    ys, xs = np.nonzero(added)
    assert len(ys) >= 4
    assert xs.mean() < top_x and ys.mean() > top  # below and to the left of the top


def test_only_the_chosen_share_of_sevens_and_ones_changes(digits: Split) -> None:
    styled = add_continental_styles(digits, 0.5, seed=3)
    changed = np.any(styled.x != digits.x, axis=(1, 2, 3))
    assert set(np.unique(digits.y[changed])) == {1, 7}
    for digit in (1, 7):
        share = changed[digits.y == digit].mean()
        assert 0.35 < share < 0.65
    assert np.array_equal(styled.y, digits.y)
    again = add_continental_styles(digits, 0.5, seed=3)
    assert np.array_equal(again.x, styled.x)  # seeded: the same run draws the same strokes
    assert add_continental_styles(digits, 0.0, seed=3) is digits
