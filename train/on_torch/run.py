"""One run on PyTorch, end to end: the split, the teacher, both phases, what it saves."""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict

import keras
import numpy as np
import torch

from train import models
from train.arguments import recipe_from
from train.data import load_mnist
from train.errors import check_keras_file
from train.on_torch import PROG
from train.on_torch.inputs import training_digits
from train.on_torch.loop import fit_phase
from train.publish import published_together
from train.recipe import clean_pass
from train.split import check_teacher_split, training_split


def versions() -> dict[str, str]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"python": platform.python_version(), "keras": keras.__version__,
            "keras_backend": keras.backend.backend(), "torch": torch.__version__,
            "numpy": np.__version__, "gpu": gpu}


def train_run(args: argparse.Namespace) -> dict:
    """Both phases of `python -m train`'s recipe, saved and recorded as it saves them."""
    recipe = recipe_from(args)
    mnist = load_mnist(args.data_dir)
    train, val = training_split(mnist, args.val_split, recipe.seed, args.limit)
    teacher = None
    if args.teacher:
        check_keras_file(args.teacher)
        check_teacher_split(args.teacher, (args.val_split, recipe.seed, args.limit))
        teacher = keras.models.load_model(args.teacher, compile=False)
    # Everything is written in `staging` and put in --out only once all of it is, as `python -m
    # train` does: a run stopped part way leaves the previous run's model beside its own
    # metrics.json (whose split convert calibrates on), not this run's model beside them.
    with published_together(args.out) as staging:
        model = models.build(args.arch)
        # As `python -m train` saves them: the augmented phase as phase1.keras, the clean phase
        # (warm-started from it) as model.keras; without a clean phase the first is model.keras.
        plan = [(recipe, args.phase_budget_s, None)]
        if recipe.clean_epochs:
            plan.append((clean_pass(recipe), None, str(args.out / "phase1.keras")))
        phases, history = [], {}
        for number, (phase_recipe, budget, init_from) in enumerate(plan, 1):
            name = "model.keras" if number == len(plan) else f"phase{number}.keras"
            digits = training_digits(train, phase_recipe, args.device_inputs_file)
            print(f"{name}: {len(digits):,} training digits, {len(val):,} validation, on "
                  f"{versions()['gpu']}", flush=True)
            started = time.perf_counter()
            phase_history = fit_phase(model, digits, val, phase_recipe, teacher=teacher,
                                      budget_s=budget)
            history = {k: history.get(k, []) + v for k, v in phase_history.items()}
            model.save(staging / name)
            phases.append({"recipe": asdict(phase_recipe), "init_from": init_from,
                           "epochs_run": len(phase_history["loss"]), "saved_as": name,
                           "train_seconds": round(time.perf_counter() - started, 1)})
        with torch.no_grad():
            val_probs = model.predict(val.x, batch_size=1024, verbose=0)
        metrics = {
            "arch": args.arch, "params": int(model.count_params()), "phases": phases,
            "train_seconds": round(sum(p["train_seconds"] for p in phases), 1),
            "epochs_run": len(history.get("loss", [])),
            "val_accuracy": round(float((val_probs.argmax(1) == val.y).mean()), 6),
            "val_split": args.val_split, "limit": args.limit, "seed": recipe.seed,
            "recipe": asdict(recipe),
            "trained_by": PROG, "device_inputs_file": str(args.device_inputs_file or ""),
            "data_source": mnist.source, "data_checksum": mnist.checksum, "versions": versions(),
        }
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / "history.json").write_text(json.dumps(history, indent=2) + "\n")
        return metrics
