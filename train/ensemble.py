"""Two trained models as one: the mean of their logits, in one file the device runs like any.

Models trained differently err on different digits (Dietterich, 2000; Lakshminarayanan et al.,
2017): averaging their logits corrects some of each one's mistakes and makes the confidence
more honest. The ensemble is a single Keras model, both bodies side by side and one Dense head
over their features whose weights are the two heads stacked and halved; so it still ends in a
Dense softmax, converts to one int8 file and needs nothing new on the device. The members count
equally: the weight is not searched on any data.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from train.data import Mnist
from train.models import ENSEMBLE_JOIN
from train.run import load_saved, report_made_model, training_phases
from train.split import recorded_split, run_metrics


def _body(model: keras.Model, name: str) -> keras.Model:
    """The network up to its final Dense layer: the features its head reads."""
    head = model.layers[-1]
    if not isinstance(head, layers.Dense):
        raise ValueError(f"{model.name} ends in {type(head).__name__}, expected a Dense layer")
    return keras.Model(model.inputs[0], head.input, name=name)


def ensemble(first: keras.Model, second: keras.Model) -> keras.Model:
    """softmax((logits₁ + logits₂) / 2) as one model with one Dense head."""
    heads = [m.layers[-1] for m in (first, second)]
    if heads[0].units != heads[1].units:
        raise ValueError("the two models answer different numbers of classes")
    inputs = keras.Input(first.inputs[0].shape[1:])
    features = layers.Concatenate(name="both_features")(
        [_body(first, "first")(inputs), _body(second, "second")(inputs)])
    head = layers.Dense(heads[0].units, activation="softmax", name="mean_of_logits")
    outputs = head(features)
    (k1, b1), (k2, b2) = (h.get_weights() for h in heads)
    head.set_weights([np.concatenate([k1, k2]) / 2, (b1 + b2) / 2])
    return keras.Model(inputs, outputs, name=f"{first.name}{ENSEMBLE_JOIN}{second.name}")


def ensemble_and_report(first_path: Path, second_path: Path, mnist: Mnist, *,
                        out: Path) -> dict:
    """Join the two, save ``out``/model.keras and write the training reports for it
    (validation on the first member's split, which the second must share)."""
    started = time.perf_counter()
    members = {"first": first_path, "second": second_path}
    metrics = {role: run_metrics(path) for role, path in members.items()}
    splits = {role: recorded_split(m) for role, m in metrics.items()}
    if splits["first"] != splits["second"]:
        raise ValueError(f"the members were trained on different splits (validation share, "
                         f"seed, limit: {splits['first']} and {splits['second']}); an "
                         "ensemble's validation digits must be held out from both")
    model = ensemble(load_saved(first_path), load_saved(second_path))
    history = {role: training_phases(path) for role, path in members.items()}
    behind = [p for phases in history.values() for p in phases]
    # One phase that holds each member's own history: they were trained side by side, not one
    # after the other, and the model card lists them so.
    phase = {"ensemble": {role: {"model": str(path), "arch": metrics[role].get("arch"),
                                 "phases": history[role]}
                          for role, path in members.items()},
             "epochs_run": sum(p.get("epochs_run") or 0 for p in behind),
             "train_seconds": round(time.perf_counter() - started
                                    + sum(p.get("train_seconds") or 0 for p in behind), 1),
             "saved_as": "model.keras"}
    archs = [m.get("arch") or "unrecorded" for m in metrics.values()]
    return report_made_model(model, mnist, out, arch="+".join(archs), like=metrics["first"],
                             phases=[phase])
