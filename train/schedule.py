"""What a training run schedules, whatever Keras's backend: the optimizer, BatchNorm's momentum
for the run's length, and early stopping with learning-rate reduction on validation loss.

Free of TensorFlow, so that `train.on_torch` (Keras on PyTorch, on a GPU machine) trains with
the same schedule as `train.fit`.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from train.recipe import OPTIMIZERS, Recipe


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


# Keras's BatchNormalization default: each training step moves the moving statistics 1% of the
# way towards the batch's. Inference (validation, test, the exported model) uses those moving
# statistics, so they must have forgotten their initial values (mean 0, variance 1) by the
# first validation: after one epoch the initial values may weigh at most this much.
BATCHNORM_MOMENTUM = 0.99
BATCHNORM_INITIAL_WEIGHT_AFTER_EPOCH = 0.02


def batchnorm_momentum(steps_per_epoch: int) -> float:
    """The largest momentum (at most Keras's 0.99) whose moving statistics converge in one epoch.

    With 0.99 they need ~400 steps; a quick run (2,000 digits: 15 steps an epoch) would keep
    85% of the initial values and read every digit the same way, however well it trained.
    """
    settle = BATCHNORM_INITIAL_WEIGHT_AFTER_EPOCH ** (1.0 / max(1, steps_per_epoch))
    return min(BATCHNORM_MOMENTUM, settle)


def match_batchnorm_to_run(model: keras.Model, steps_per_epoch: int) -> None:
    """Give every BatchNormalization layer the momentum this run's length needs."""
    momentum = batchnorm_momentum(steps_per_epoch)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


class Plateau:
    """The bookkeeping of EarlyStopping + ReduceLROnPlateau, for loops written by hand (the
    custom loop here, `train.on_torch` on a GPU)."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.best = math.inf
        self.best_weights: list[np.ndarray] | None = None
        self.since_best = 0
        self.since_lr_change = 0

    def update(self, val_loss: float, model: keras.Model, optimizer) -> bool:
        """Record one epoch; return True when training should stop."""
        if val_loss < self.best:
            self.best, self.since_best, self.since_lr_change = val_loss, 0, 0
            self.best_weights = model.get_weights()
            return False
        self.since_best += 1
        self.since_lr_change += 1
        if self.since_lr_change >= self.recipe.lr_patience:
            lr = float(optimizer.learning_rate)
            optimizer.learning_rate = max(lr * self.recipe.lr_factor, self.recipe.min_lr)
            self.since_lr_change = 0
        return self.since_best >= self.recipe.patience
