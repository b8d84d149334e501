"""Training-time augmentation: how a camera frame differs from an MNIST scan.

Small rotations, shifts and scale changes come from Keras preprocessing layers; stroke
thickness changes come from a grey-level dilation or erosion with a 2x2 window, which
thickens or thins a 2-3 px MNIST stroke by about one pixel. The layers and the stroke change
work on any Keras backend (`train.on_torch` uses them on PyTorch); only the tf.data pipeline
and its per-batch seeds need TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import layers, ops

if TYPE_CHECKING:
    import tensorflow as tf


# The geometric ranges at strength 1 (`train.on_torch` draws the same ones in one affine warp).
ROTATION_DEGREES = 12.0
ZOOM = 0.12  # the scale changes by up to this share either way
SHIFT = 0.1  # of the side, each way


def geometric(seed: int, strength: float = 1.0) -> keras.Sequential:
    """At strength 1: rotations up to 12°, zoom ±12%, shifts up to 10% of the side."""
    return keras.Sequential(
        [
            layers.RandomRotation(strength * ROTATION_DEGREES / 360, fill_mode="constant",
                                  seed=seed),
            layers.RandomZoom(strength * ZOOM, fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(strength * SHIFT, strength * SHIFT, fill_mode="constant",
                                     seed=seed + 2),
        ],
        name="augment",
    )


def change_strokes(images, choice, p: float = 0.2):
    """Per image: dilate where its ``choice`` (uniform in [0, 1), shape (N, 1, 1, 1)) is below
    p, erode where it is above 1 - p, else keep."""
    dilated = ops.max_pool(images, 2, strides=1, padding="same")
    eroded = -ops.max_pool(-images, 2, strides=1, padding="same")
    return ops.where(choice < p, dilated, ops.where(choice > 1 - p, eroded, images))


def stroke_thickness(images: tf.Tensor, seed: tf.Tensor, p: float = 0.2) -> tf.Tensor:
    """`change_strokes` with choices drawn from a stateless seed, as tf.data needs."""
    import tensorflow as tf

    choice = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=seed)
    return change_strokes(images, choice, p)


def augment_dataset(dataset: tf.data.Dataset, seed: int, strength: float = 1.0) -> tf.data.Dataset:
    """Augment batched (x, y) pairs deterministically for a given seed."""
    import tensorflow as tf

    geo = geometric(seed, strength)

    def apply(index: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]):
        x, y = batch
        x = geo(x, training=True)
        x = stroke_thickness(x, tf.stack([tf.cast(index, tf.int32), seed]), 0.2 * strength)
        return tf.clip_by_value(x, 0.0, 1.0), y

    return dataset.enumerate().map(apply, num_parallel_calls=1, deterministic=True)
