"""Knowledge distillation: a cheaper network also learns a trained model's answers.

The teacher (`--teacher`, e.g. the shipped ensemble) reads every training batch as the student
sees it, after augmentation and device cuts, and the student is trained towards both the label
and the teacher's probabilities softened by a temperature (Hinton, Vinyals and Dean, 2015): how
much a 7 looks like a 1 to the teacher is information a one-hot label does not carry.

Targets travel as one float tensor per batch, the label in column 0 and the teacher's ten
probabilities after it, so Keras `fit`, the custom loop and validation need nothing new.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import ops

if TYPE_CHECKING:  # tf.data is the CPU pipeline's; the loss below is free of TensorFlow
    import tensorflow as tf

# Hinton et al.'s usual values, not tuned here: half the loss from each source, and a
# temperature that lifts the teacher's second choices out of the float noise.
TEACHER_WEIGHT = 0.5
TEMPERATURE = 2.0
_EPSILON = 1e-7


def with_teacher(dataset: tf.data.Dataset, teacher: keras.Model) -> tf.data.Dataset:
    """(x, label) batches → (x, [label, the teacher's ten probabilities])."""

    def pack(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return x, pack_targets(y, teacher(x, training=False))

    return dataset.map(pack, num_parallel_calls=1, deterministic=True)


def labels_of(targets):
    """The integer labels of a batch's targets, packed (with a teacher) or plain (any backend's
    tensor)."""
    if len(targets.shape) == 1:
        return ops.cast(targets, "int64")
    return ops.cast(targets[:, 0], "int64")


def pack_targets(labels, teacher_probs):
    """A batch's targets with a teacher: the label in column 0, its ten probabilities after."""
    return ops.concatenate([ops.cast(labels, "float32")[:, None],
                            ops.cast(teacher_probs, "float32")], axis=1)


def _soften(probs, temperature: float):
    # softmax(logits / T) from probabilities: log p equals the logits up to a constant per row.
    return ops.softmax(ops.log(ops.clip(probs, _EPSILON, 1.0)) / temperature, axis=-1)


@keras.saving.register_keras_serializable(package="train")
class DistillationLoss(keras.losses.Loss):
    """(1 − w)·cross-entropy with the label + w·T²·KL(teacher_T ‖ student_T).

    T² keeps the soft term's gradients the size of the hard term's whatever the temperature.
    """

    def __init__(self, teacher_weight: float = TEACHER_WEIGHT,
                 temperature: float = TEMPERATURE, name: str = "distillation", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.teacher_weight = teacher_weight
        self.temperature = temperature

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        hard = keras.losses.sparse_categorical_crossentropy(labels_of(y_true), y_pred)
        teacher = _soften(y_true[:, 1:], self.temperature)
        student = _soften(y_pred, self.temperature)
        soft = ops.sum(
            teacher * (ops.log(teacher + _EPSILON) - ops.log(student + _EPSILON)), axis=1)
        return ((1.0 - self.teacher_weight) * hard
                + self.teacher_weight * self.temperature ** 2 * soft)

    def get_config(self) -> dict:
        return {**super().get_config(), "teacher_weight": self.teacher_weight,
                "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="train")
def label_accuracy(y_true, y_pred):
    """Accuracy against the label column (the teacher's columns are not the truth)."""
    return ops.cast(ops.equal(ops.argmax(y_pred, axis=1), labels_of(y_true)), "float32")


def accuracy_metric() -> keras.metrics.Metric:
    # Named "accuracy" so the history and reports read the same with and without a teacher.
    return keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")
