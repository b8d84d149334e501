"""A weight-space blend of a model and its fine-tuned self (WiSE-FT, Wortsman et al., 2022).

Fine-tuning on the pictures the device cuts out makes the model better at real handwriting but
costs it some of MNIST; the midpoint of the two weight sets (BatchNorm statistics included) keeps
most of both, since a fine-tuned model stays in the same basin as the model it started from.
The weight defaults to the method's own 0.5; it is not searched on any data.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras

from train.data import Mnist
from train.run import load_saved, report_made_model
from train.split import run_metrics


def blend(base: keras.Model, tuned: keras.Model, weight: float) -> keras.Model:
    """``tuned`` itself, its weights set in place to (1 − weight)·base + weight·tuned."""
    base_weights, tuned_weights = base.get_weights(), tuned.get_weights()
    if [w.shape for w in base_weights] != [w.shape for w in tuned_weights]:
        raise ValueError("the two models differ in architecture; blend a model with a "
                         "fine-tuned copy of itself")
    tuned.set_weights([(1 - weight) * b + weight * t
                       for b, t in zip(base_weights, tuned_weights, strict=True)])
    return tuned


def blend_and_report(base_path: Path, tuned_path: Path, mnist: Mnist, *, weight: float,
                     out: Path) -> dict:
    """Blend, save ``out``/model.keras and write the training reports for it (validation on the
    tuned run's own split, test for the final figures)."""
    started = time.perf_counter()
    tuned_metrics = run_metrics(tuned_path)
    model = blend(load_saved(base_path), load_saved(tuned_path), weight)
    phase = {"blend": {"base": str(base_path), "tuned": str(tuned_path), "weight": weight},
             "init_from": str(tuned_path), "epochs_run": 0,
             "train_seconds": round(time.perf_counter() - started, 1), "saved_as": "model.keras"}
    # The blend's record goes on from the tuned run's: its phases, epochs and time are the
    # model's history too (the model card lists them).
    return report_made_model(model, mnist, out, arch=tuned_metrics.get("arch"),
                             like=tuned_metrics,
                             phases=[*tuned_metrics.get("phases", []), phase])
