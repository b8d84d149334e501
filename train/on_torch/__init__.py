"""`python -m train.on_torch`: train on a GPU machine that has PyTorch but no TensorFlow.

Keras 3 runs the same architectures on its PyTorch backend, so a GPU rented for an hour (whose
image ships PyTorch, rarely TensorFlow) trains what `python -m train` trains on a CPU in a
fraction of the time:

    KERAS_BACKEND=torch python -m train.on_torch --arch digitnet-lite \\
        --teacher models/digitnet.keras --styles 0.5 --device-inputs 60000 --out runs/lite-gpu

The run uses `python -m train`'s split, continental styles, device inputs, augmentation ranges
and stroke change (`train.augment`), distillation loss (`train.distill`) and schedule (early
stopping, learning-rate halving, the clean phase: `train.schedule`), and saves model.keras,
phase1.keras and metrics.json the same way, so `python -m convert`, `train ensemble` and
`train blend` take its model like any run's (they load it under TensorFlow). It is not the CPU
run's twin: the rotation, zoom and shift are one affine warp drawn by PyTorch's generator, not
Keras's three layers drawing from tf.data's per-batch seeds.
It reports validation accuracy only; the test digits are measured where the model is chosen.

Device inputs take minutes of CPU (OpenCV, one process per core); `device-inputs` makes them
once, wherever there are cores, for runs that name the file with --device-inputs-file:

    python -m train.on_torch device-inputs --styles 0.5 --count 60000 --out inputs.npz
"""

PROG = "python -m train.on_torch"
