"""What a training run is made of, importable without TensorFlow (so `--help` is instant):
the architectures' names, the optimizers and the recipe with its defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace

# Each name is registered with its builder in train.models (a test keeps the two in step).
ARCHITECTURES = {
    "mlp": "the notebooks' baseline: one hidden layer of 128 (101,770 parameters)",
    "keras-convnet": "Keras's mnist_convnet.py example (34,826 parameters)",
    "notebook-cnn": "the notebooks' three-convolution CNN (121,994 parameters)",
    "notebook-cnn-5x5": "the TensorFlow tutorial's CNN, 5x5 kernels (3,274,634 parameters)",
    "digitnet": "Conv+BatchNorm blocks, global pooling (131,754 parameters)",
    "digitnet-flat": "the product's default: digitnet with a flattened 5x5 head (118,698)",
    "digitnet-lite": "digitnet-flat at a fifth of the arithmetic (67,994 parameters)",
    "digitnet-mini": "digitnet-lite at 48 channels, an ensemble's second member (43,370)",
}
DEFAULT_ARCH = "digitnet-flat"

OPTIMIZERS = ("adam", "rmsprop", "sgd")


@dataclass(frozen=True)
class Recipe:
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    augment: bool = True
    augment_strength: float = 1.0  # scales every augmentation range (see train.augment)
    seed: int = 42
    patience: int = 6  # epochs without val_loss improvement before stopping
    lr_patience: int = 2  # epochs without improvement before halving the learning rate
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    # After augmented training: a few epochs on undistorted digits at a low learning rate
    # re-fit the BatchNorm statistics and the classifier to the digits the model will see.
    clean_epochs: int = 3
    clean_learning_rate: float = 1e-4
    # Share of the 7s crossed and of the 1s flagged (see train.styles), in this phase and in
    # the clean phase.
    styles: float = 0.0
    clean_styles: float = 0.5
    # Training digits drawn into pictures and cut out again by the device's own preprocessing
    # (train.device_inputs), added to this phase's training set; the clean phase keeps them,
    # since they are what the model will see on the device.
    device_inputs: int = 0
    # A trained model (path to its .keras file) whose answers the student learns as well as the
    # labels, in both phases (train.distill); None trains on the labels alone.
    teacher: str | None = None


def clean_pass(recipe: Recipe) -> Recipe:
    """The recipe of the final phase on undistorted digits."""
    return replace(recipe, augment=False, epochs=recipe.clean_epochs, patience=2,
                   learning_rate=recipe.clean_learning_rate, clean_epochs=0,
                   styles=recipe.clean_styles)


