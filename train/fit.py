"""Two ways to train one model on one data set: Keras ``fit`` and an explicit GradientTape loop.

Both honour the same recipe (early stopping and learning-rate reduction on validation loss,
best weights restored) and return the same history dictionary.
"""

from __future__ import annotations

import math
import sys

import keras
import tensorflow as tf

from train.augment import augment_dataset
from train.data import Split
from train.device_inputs import phase_digits
from train.distill import DistillationLoss, accuracy_metric, labels_of, with_teacher
from train.recipe import Recipe
from train.schedule import (
    Plateau,
    make_optimizer,
    match_batchnorm_to_run,
)


def strategy() -> tf.distribute.Strategy:
    """Several GPUs → MirroredStrategy; otherwise the default (one device) strategy."""
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def datasets(train: Split, val: Split, recipe: Recipe,
             teacher: keras.Model | None = None) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    train = phase_digits(train, recipe)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((train.x, train.y))
        .shuffle(len(train), seed=recipe.seed, reshuffle_each_iteration=True)
        .batch(recipe.batch_size)
    )
    if recipe.augment:
        train_ds = augment_dataset(train_ds, recipe.seed, recipe.augment_strength)
    val_ds = tf.data.Dataset.from_tensor_slices((val.x, val.y)).batch(512)
    if teacher is not None:  # after augmentation: the teacher reads what the student reads
        train_ds, val_ds = with_teacher(train_ds, teacher), with_teacher(val_ds, teacher)
    return train_ds.prefetch(2), val_ds.prefetch(2)


def loss_for(recipe: Recipe) -> keras.losses.Loss:
    """Cross-entropy with the labels; with a teacher, with its answers as well."""
    if recipe.teacher:
        return DistillationLoss()
    return keras.losses.SparseCategoricalCrossentropy()


def compile_model(model: keras.Model, recipe: Recipe) -> None:
    model.compile(
        optimizer=make_optimizer(recipe.optimizer, recipe.learning_rate),
        loss=loss_for(recipe),
        metrics=[accuracy_metric() if recipe.teacher else "accuracy"],
    )


def progress_verbosity() -> int:
    """Keras's live progress bar on a terminal; one plain line per epoch in a redirected log.

    The live bar redraws itself with carriage returns and colour codes (Keras 3 writes them
    whatever the output is), which turn a log file into one unreadable line per epoch.
    """
    return 1 if sys.stdout.isatty() else 2


def steps_per_epoch(train: Split, recipe: Recipe) -> int:
    return math.ceil(len(train) / recipe.batch_size)


def fit_keras(model: keras.Model, train: Split, val: Split, recipe: Recipe,
              teacher: keras.Model | None = None) -> dict[str, list]:
    train_ds, val_ds = datasets(train, val, recipe, teacher)
    match_batchnorm_to_run(model, steps_per_epoch(train, recipe))
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=recipe.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=recipe.lr_factor,
            patience=recipe.lr_patience,
            min_lr=recipe.min_lr,
        ),
    ]
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=recipe.epochs, callbacks=callbacks,
        verbose=progress_verbosity(),
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
    )
    return _clean_history(history.history)


def _clean_history(history: dict) -> dict[str, list]:
    renamed = {"learning_rate": "lr"}
    return {renamed.get(k, k): [float(v) for v in vs] for k, vs in history.items()}


def fit_custom(model: keras.Model, train: Split, val: Split, recipe: Recipe,
               teacher: keras.Model | None = None) -> dict[str, list]:
    """The notebook's explicit loop: forward under a GradientTape, gradients, optimizer step."""
    train_ds, val_ds = datasets(train, val, recipe, teacher)
    optimizer = make_optimizer(recipe.optimizer, recipe.learning_rate)
    loss_fn = loss_for(recipe)
    steps = steps_per_epoch(train, recipe)
    match_batchnorm_to_run(model, steps)

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            loss = loss_fn(y, probs)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss, probs

    @tf.function(reduce_retracing=True)
    def eval_step(x, y):
        probs = model(x, training=False)
        return loss_fn(y, probs), probs

    def run(dataset, step, progress: keras.utils.Progbar | None) -> tuple[float, float]:
        total_loss = correct = seen = 0.0
        for i, (x, y) in enumerate(dataset):
            loss, probs = step(x, y)
            n = float(tf.shape(y)[0])
            total_loss += float(loss) * n
            hits = tf.cast(tf.argmax(probs, 1) == labels_of(y), tf.float32)
            correct += float(tf.reduce_sum(hits))
            seen += n
            if progress is not None:
                progress.update(i + 1, [("loss", total_loss / seen), ("accuracy", correct / seen)])
        return total_loss / seen, correct / seen

    history: dict[str, list] = {k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    history["lr"] = []
    plateau = Plateau(recipe)
    for epoch in range(recipe.epochs):
        print(f"Epoch {epoch + 1}/{recipe.epochs}")
        lr = float(optimizer.learning_rate)
        loss, acc = run(train_ds, train_step,
                        keras.utils.Progbar(steps, verbose=progress_verbosity()))
        val_loss, val_acc = run(val_ds, eval_step, None)
        print(f"  val_loss {val_loss:.4f} - val_accuracy {val_acc:.4f} - lr {lr:.2e}")
        for key, value in zip(history, (loss, acc, val_loss, val_acc, lr), strict=True):
            history[key].append(value)
        if plateau.update(val_loss, model, optimizer):
            break
    if plateau.best_weights is not None:
        model.set_weights(plateau.best_weights)
    return history
