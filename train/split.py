"""Which digits a run trained on and which it held out, and what its metrics.json records of
that: free of TensorFlow, for `train.run` and `train.on_torch` alike."""

from __future__ import annotations

import json
from pathlib import Path

from train.data import VAL_SPLIT, Mnist, Split, split_validation
from train.errors import ModelFileError
from train.recipe import Recipe


def limit(split: Split, n: int | None) -> Split:
    """The first ``n`` digits (all with None): what --limit keeps."""
    return split if not n else Split(split.x[:n], split.y[:n])


def training_split(mnist: Mnist, val_split: float, seed: int,
                   limit_n: int | None = None) -> tuple[Split, Split]:
    """A run's training and validation digits; the same arguments always give the same split."""
    return split_validation(limit(mnist.train, limit_n), val_split, seed)


def run_metrics(model_path: Path) -> dict:
    """The metrics.json of the run that saved ``model_path``; {} for a model from elsewhere
    (whose split is then the training defaults)."""
    path = model_path.parent / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def recorded_split(metrics: dict) -> tuple[float, int, int | None]:
    """The validation share, seed and limit a run's metrics record (the training defaults for a
    model from elsewhere): what `training_split` needs to give back its digits."""
    return (metrics.get("val_split", VAL_SPLIT), metrics.get("seed", Recipe().seed),
            metrics.get("limit"))


def check_teacher_split(path: Path, split: tuple[float, int, int | None]) -> None:
    """Refuse a teacher that did not hold out this run's validation digits (``split``: share,
    seed, limit): its answers would hand the student their labels."""
    # A model without its run's metrics.json (e.g. models/digitnet.keras) counts as trained on
    # the defaults, as `train ensemble` and `train blend` take it.
    val_split, seed, limit_n = recorded_split(run_metrics(path))
    if (val_split, seed, limit_n) != split:
        raise ModelFileError(
            f"the teacher {path} was trained on another split (validation share {val_split}, "
            f"seed {seed}, limit {limit_n}) than this run's (validation share {split[0]}, seed "
            f"{split[1]}, limit {split[2]}); its answers would leak this run's validation "
            "digits: train with the teacher's --val-split, --seed and --limit")
