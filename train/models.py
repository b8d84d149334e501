"""The architecture registry: each entry is a short function that reads top to bottom."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from train.recipe import DEFAULT_ARCH

__all__ = ["DEFAULT_ARCH", "ENSEMBLE_JOIN", "REGISTRY", "arch_of", "build"]

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

Builder = Callable[[], keras.Model]
REGISTRY: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        REGISTRY[name] = builder
        return builder

    return add


def build(name: str) -> keras.Model:
    if name not in REGISTRY:
        raise KeyError(f"unknown architecture {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]()


# An ensemble's Keras name joins its members' (`train ensemble`): "first_and_second".
ENSEMBLE_JOIN = "_and_"


def arch_of(model: keras.Model) -> str | None:
    """The registry name of a model `build` made (its Keras name is the registry name with
    underscores; a blend keeps it), 'first+second' for an ensemble of two; None for a model from
    elsewhere."""
    parts = [part.replace("_", "-") for part in model.name.split(ENSEMBLE_JOIN)]
    return "+".join(parts) if all(part in REGISTRY for part in parts) else None


@register("mlp")
def mlp() -> keras.Model:
    """The notebooks' baseline (101,770 parameters)."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mlp",
    )


@register("keras-convnet")
def keras_convnet() -> keras.Model:
    """Keras's mnist_convnet.py example (34,826 parameters)."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="keras_convnet",
    )


@register("notebook-cnn")
def notebook_cnn() -> keras.Model:
    """The notebooks' three-conv CNN (121,994 parameters)."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="notebook_cnn",
    )


@register("notebook-cnn-5x5")
def notebook_cnn_5x5() -> keras.Model:
    """The notebooks' TensorFlow-tutorial CNN with 5x5 kernels and a 1024-unit layer."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(1024, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="notebook_cnn_5x5",
    )


def _bn_relu(x: keras.KerasTensor) -> keras.KerasTensor:
    # After a convolution without bias, BatchNorm folds into it at conversion and ReLU fuses:
    # one int8 kernel.
    return layers.ReLU()(layers.BatchNormalization()(x))


def _conv_bn_relu(x: keras.KerasTensor, filters: int, padding: str = "same") -> keras.KerasTensor:
    return _bn_relu(layers.Conv2D(filters, 3, padding=padding, use_bias=False)(x))


def _separable_bn_relu(x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
    """A 3x3 filter per channel (depthwise), then a 1x1 mix of the channels (pointwise)."""
    x = _bn_relu(layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x))
    return _bn_relu(layers.Conv2D(filters, 1, use_bias=False)(x))


@register("digitnet")
def digitnet() -> keras.Model:
    """VGG-style blocks with BatchNorm and global pooling (~132k params); the first default.

    Every layer maps to an integer TFLite kernel (Conv2D with BN and ReLU folded in, MaxPool,
    Mean, FullyConnected, Softmax) and the int8 file stays under 150 KB. One convolution at
    full resolution keeps training affordable on a 2-core CPU.
    """
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_bn_relu(inputs, 32)
    x = layers.MaxPooling2D(2)(x)  # 14x14
    x = _conv_bn_relu(x, 64)
    x = _conv_bn_relu(x, 64)
    x = layers.MaxPooling2D(2)(x)  # 7x7
    x = _conv_bn_relu(x, 128, padding="valid")  # 5x5
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="digitnet")


@register("digitnet-flat")
def digitnet_flat() -> keras.Model:
    """The product's default: digitnet with two full-resolution convolutions and a flattened
    5x5 head (~118k params, 132 KB as int8).

    The flattened head keeps where on the canvas each feature fired, which global pooling
    throws away; it costs ~50% more compute per digit than digitnet and, trained the same way
    (augmented, then clean), reads 0.18 pp more of MNIST (validation 99.58% against 99.40%).
    """
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_bn_relu(inputs, 32)
    x = _conv_bn_relu(x, 32)
    x = layers.MaxPooling2D(2)(x)  # 14x14
    x = _conv_bn_relu(x, 64)
    x = _conv_bn_relu(x, 64)
    x = layers.MaxPooling2D(2)(x)  # 7x7
    x = _conv_bn_relu(x, 64, padding="valid")  # 5x5
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="digitnet_flat")


def _lite(width: int, name: str) -> keras.Model:
    """16 filters at full resolution, then ``width`` channels: one full convolution at 14x14, a
    depthwise-separable one, and the flattened 5x5 head."""
    inputs = keras.Input(INPUT_SHAPE)
    x = _conv_bn_relu(inputs, 16)
    x = layers.MaxPooling2D(2)(x)  # 14x14
    x = _conv_bn_relu(x, width)
    x = _separable_bn_relu(x, width)
    x = layers.MaxPooling2D(2)(x)  # 7x7
    x = _conv_bn_relu(x, width, padding="valid")  # 5x5
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


@register("digitnet-lite")
def digitnet_lite() -> keras.Model:
    """digitnet-flat at a fifth of the arithmetic (3.8M multiply-adds against 19M; 82 KB int8).

    Where the time goes on a CPU without int8 dot-product instructions (a Pi's Cortex-A72, an
    AVX2 PC): a convolution of the one-channel input at full resolution is cheap in arithmetic
    but slow in practice, and the 28x28 32->32 convolution is over a third of digitnet-flat's
    work. So: 16 filters at full resolution, one full convolution at 14x14, a depthwise-separable
    one in place of the second, the same flattened 5x5 head.
    """
    return _lite(64, "digitnet_lite")


@register("digitnet-mini")
def digitnet_mini() -> keras.Model:
    """digitnet-lite at 48 channels (2.5M multiply-adds, 56 KB int8): small enough to ride
    beside digitnet-flat in one file (`python -m train ensemble`) within 200 KB and 1.5x its
    time, trained differently so that the two err on different digits; the shipped model's
    second member.
    """
    return _lite(48, "digitnet_mini")
