"""One training phase on PyTorch: `train.fit`'s loop (augmentation, the teacher's targets, early
stopping and learning-rate halving on validation loss, best weights kept), written out for a
GPU, with a time budget."""

from __future__ import annotations

import math
import time

import keras
import torch
from keras import ops
from torch.nn import functional

from train.augment import ROTATION_DEGREES, SHIFT, ZOOM, change_strokes
from train.data import Split
from train.distill import DistillationLoss, pack_targets
from train.recipe import Recipe
from train.schedule import Plateau, make_optimizer, match_batchnorm_to_run


class PhaseSteps:
    """One phase's moving parts on the device: augmentation, the teacher's targets, a training
    step and an evaluation, as `train.fit`'s tf.data pipeline and Keras fit do them."""

    def __init__(self, model, recipe: Recipe, teacher) -> None:
        self.model, self.recipe, self.teacher = model, recipe, teacher
        self.optimizer = make_optimizer(recipe.optimizer, recipe.learning_rate)
        self.optimizer.build(model.trainable_variables)
        self.loss_fn = (DistillationLoss() if teacher is not None
                        else keras.losses.SparseCategoricalCrossentropy())
        self.draws = None  # a torch.Generator on the model's device, made at the first batch

    def uniform(self, n: int, device, low: float = -1.0, high: float = 1.0):
        if self.draws is None:
            self.draws = torch.Generator(device=device).manual_seed(self.recipe.seed)
        return low + (high - low) * torch.rand(n, device=device, generator=self.draws)

    def warped(self, x):
        """`train.augment.geometric`'s rotation, zoom and shift, drawn per digit and applied
        as one affine warp (bilinear, black outside). The three Keras layers, called eagerly on
        PyTorch, took 22 ms a batch of Python on this project's 2-core CPU, the warp 0.8 ms."""
        n, s = x.shape[0], self.recipe.augment_strength
        angle = torch.deg2rad(self.uniform(n, x.device) * s * ROTATION_DEGREES)
        scale = 1.0 + self.uniform(n, x.device) * s * ZOOM
        shift = self.uniform(2 * n, x.device).reshape(n, 2) * s * SHIFT * 2  # [-1, 1] spans 2
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        planes = x.permute(0, 3, 1, 2)
        grid = functional.affine_grid(theta, list(planes.shape), align_corners=False)
        warped = functional.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros",
                                        align_corners=False)
        return warped.permute(0, 2, 3, 1)

    def augmented(self, x):
        if not self.recipe.augment:
            return x
        choice = self.uniform(x.shape[0], x.device, 0.0, 1.0).reshape(-1, 1, 1, 1)
        x = change_strokes(self.warped(x), choice, 0.2 * self.recipe.augment_strength)
        return ops.clip(x, 0.0, 1.0)

    def targets(self, x, y):
        if self.teacher is None:
            return y
        with torch.no_grad():  # the teacher only answers; nothing of it is trained
            return pack_targets(y, self.teacher(x, training=False))

    def train_on(self, x, y):
        """One optimizer step on a batch; its mean loss and how many it read right, as tensors
        on the device (reading them back each step would wait for the GPU every step)."""
        with torch.no_grad():
            x = self.augmented(x)
            y_true = self.targets(x, y)
        self.model.zero_grad()
        probs = self.model(x, training=True)
        loss = self.loss_fn(y_true, probs)
        loss.backward()
        grads = [v.value.grad for v in self.model.trainable_variables]
        with torch.no_grad():
            self.optimizer.apply(grads, self.model.trainable_variables)
        return loss.detach(), ops.sum(ops.argmax(probs, axis=1) == y)

    def evaluate(self, split: Split) -> tuple[float, float]:
        total = correct = 0.0
        with torch.no_grad():
            for i in range(0, len(split), 1024):
                x = ops.convert_to_tensor(split.x[i : i + 1024])
                y = ops.convert_to_tensor(split.y[i : i + 1024])
                probs = self.model(x, training=False)
                total += float(self.loss_fn(self.targets(x, y), probs)) * len(split.y[i : i + 1024])
                correct += float(ops.sum(ops.argmax(probs, axis=1) == y))
        return total / len(split), correct / len(split)


def fit_phase(model, train: Split, val: Split, recipe: Recipe, *, teacher=None,
              budget_s: float | None = None) -> dict[str, list]:
    """Train ``model`` in place by ``recipe``; return its history. Starts no epoch after
    ``budget_s`` seconds; the best weights on validation loss are kept, as in `train.fit`."""
    keras.utils.set_random_seed(recipe.seed)
    x_all, y_all = ops.convert_to_tensor(train.x), ops.convert_to_tensor(train.y)
    match_batchnorm_to_run(model, math.ceil(len(train) / recipe.batch_size))
    steps = PhaseSteps(model, recipe, teacher)
    order_of = torch.Generator().manual_seed(recipe.seed)
    history: dict[str, list] = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy",
                                                 "lr")}
    plateau, started = Plateau(recipe), time.perf_counter()
    for epoch in range(recipe.epochs):
        if budget_s is not None and time.perf_counter() - started > budget_s:
            print(f"  time budget of {budget_s:.0f} s spent: no epoch {epoch + 1}", flush=True)
            break
        lr = float(steps.optimizer.learning_rate)
        order = torch.randperm(len(train), generator=order_of).to(x_all.device)
        total = correct = 0.0
        for i in range(0, len(train), recipe.batch_size):
            batch = order[i : i + recipe.batch_size]
            loss, right = steps.train_on(x_all[batch], y_all[batch])
            total, correct = total + loss * len(batch), correct + right
        row = (float(total) / len(train), float(correct) / len(train), *steps.evaluate(val), lr)
        for key, value in zip(history, row, strict=True):
            history[key].append(value)
        print(f"epoch {epoch + 1}/{recipe.epochs}: loss {row[0]:.4f} accuracy {row[1]:.4f} "
              f"val_loss {row[2]:.4f} val_accuracy {row[3]:.4f} lr {lr:.2e} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if plateau.update(row[2], model, steps.optimizer):
            break
    if plateau.best_weights is not None:
        model.set_weights(plateau.best_weights)
    return history
