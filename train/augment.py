"""Training-time augmentation: how a camera frame differs from an MNIST scan.

Small rotations, shifts and scale changes come from Keras preprocessing layers; stroke
thickness changes come from a grey-level dilation or erosion with a 2x2 window, which
thickens or thins a 2-3 px MNIST stroke by about one pixel.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def geometric(seed: int, strength: float = 1.0) -> keras.Sequential:
    """At strength 1: rotations up to 12°, zoom ±12%, shifts up to 10% of the side."""
    return keras.Sequential(
        [
            layers.RandomRotation(strength * 12 / 360, fill_mode="constant", seed=seed),
            layers.RandomZoom(strength * 0.12, fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(strength * 0.1, strength * 0.1, fill_mode="constant",
                                     seed=seed + 2),
        ],
        name="augment",
    )


def stroke_thickness(images: tf.Tensor, seed: tf.Tensor, p: float = 0.2) -> tf.Tensor:
    """Per image: dilate with probability p, erode with probability p, else keep."""
    dilated = tf.nn.max_pool2d(images, ksize=2, strides=1, padding="SAME")
    eroded = -tf.nn.max_pool2d(-images, ksize=2, strides=1, padding="SAME")
    batch = tf.shape(images)[0]
    choice = tf.random.stateless_uniform([batch, 1, 1, 1], seed=seed)
    return tf.where(choice < p, dilated, tf.where(choice > 1 - p, eroded, images))


def augment_dataset(dataset: tf.data.Dataset, seed: int, strength: float = 1.0) -> tf.data.Dataset:
    """Augment batched (x, y) pairs deterministically for a given seed."""
    geo = geometric(seed, strength)

    def apply(index: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]):
        x, y = batch
        x = geo(x, training=True)
        x = stroke_thickness(x, tf.stack([tf.cast(index, tf.int32), seed]), 0.2 * strength)
        return tf.clip_by_value(x, 0.0, 1.0), y

    return dataset.enumerate().map(apply, num_parallel_calls=1, deterministic=True)
