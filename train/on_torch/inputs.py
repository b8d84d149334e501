"""A run's device inputs, made once to a file (minutes of CPU) and checked when a run loads
them: the digits `python -m train --device-inputs N` adds to a phase."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from train.data import DataError, Split
from train.on_torch import PROG
from train.recipe import Recipe
from train.styles import add_continental_styles


def make_device_inputs(train: Split, styles: float, count_: int, seed: int) -> dict:
    """What `python -m train` adds to a phase with these settings, as uint8 for a file (the
    device hands the model its inputs in steps of 1/255 too)."""
    from train.device_inputs import device_inputs

    styled = add_continental_styles(train, styles, seed)
    x, y = device_inputs(styled.x, styled.y, count_, seed)
    return {"x": np.clip(np.rint(x[..., 0] * 255), 0, 255).astype(np.uint8), "y": y,
            "styles": styles, "count": count_, "seed": seed, "train_size": len(train)}


def load_device_inputs(path: Path, recipe: Recipe, train_size: int) -> Split:
    """The file's inputs, refused unless it was made with this phase's settings from a
    training split of this size (a --limit run draws from fewer digits)."""
    try:
        with np.load(path) as saved:
            made = {k: saved[k] for k in ("x", "y", "styles", "count", "seed", "train_size")}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a file made by `{PROG} device-inputs` ({exc})") from exc
    wanted = (recipe.styles, recipe.device_inputs, recipe.seed, train_size)
    found = (float(made["styles"]), int(made["count"]), int(made["seed"]),
             int(made["train_size"]))
    if found != wanted:
        raise DataError(f"{path} holds device inputs made with styles, count, seed and training "
                        f"digits {found}; this phase needs {wanted}: make them with "
                        f"`{PROG} device-inputs`")
    return Split(made["x"][..., None].astype(np.float32) / 255.0, made["y"].astype(np.int64))


def training_digits(train: Split, recipe: Recipe, inputs_file: Path | None) -> Split:
    """`train.device_inputs.phase_digits`, with the device inputs from a file if one is named."""
    if inputs_file is None or recipe.device_inputs <= 0:
        from train.device_inputs import phase_digits  # OpenCV and the device's preprocessing

        return phase_digits(train, recipe)
    styled = add_continental_styles(train, recipe.styles, recipe.seed)
    extra = load_device_inputs(inputs_file, recipe, len(train))
    return Split(np.concatenate([styled.x, extra.x]), np.concatenate([styled.y, extra.y]))
