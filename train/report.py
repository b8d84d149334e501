"""Metrics and pictures of a trained model: what a careful practitioner shows."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a training server
import matplotlib.pyplot as plt
import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int = 10) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class_report(matrix: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class, from a confusion matrix (rows = truth)."""
    report = {}
    for c in range(matrix.shape[0]):
        tp = matrix[c, c]
        predicted, actual = matrix[:, c].sum(), matrix[c, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[str(c)] = {
            "precision": round(float(precision), 5),
            "recall": round(float(recall), 5),
            "f1": round(float(f1), 5),
            "support": int(actual),
        }
    return report


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, loss, confusion matrix and per-class report for predicted probabilities."""
    y_pred = probs.argmax(axis=1)
    picked = np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1.0)
    matrix = confusion_matrix(y_true, y_pred)
    return {
        "test_accuracy": round(float((y_pred == y_true).mean()), 6),
        "test_loss": round(float(-np.log(picked).mean()), 6),
        "errors": int((y_pred != y_true).sum()),
        "per_class": per_class_report(matrix),
        "confusion_matrix": matrix.tolist(),
    }


def format_per_class(per_class: dict[str, dict[str, float]]) -> str:
    lines = ["class  precision  recall  f1      support"]
    lines += [
        f"{c:>5}  {r['precision']:.4f}     {r['recall']:.4f}  {r['f1']:.4f}  {r['support']:>7}"
        for c, r in per_class.items()
    ]
    return "\n".join(lines)


def plot_history(history: dict[str, list], path: Path) -> None:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, title in ((ax_loss, "loss", "Loss"), (ax_acc, "accuracy", "Accuracy")):
        ax.plot(epochs, history[key], label="train")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # Log colour scale: the diagonal holds ~1000 per class, the errors a handful.
    shown = np.log1p(matrix)
    ax.imshow(shown, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if shown[i, j] > shown.max() * 0.6 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_grid(images: np.ndarray, captions: list[str], path: Path, title: str,
              columns: int = 10) -> None:
    count = max(len(images), 1)
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        ax.imshow(image.squeeze(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(out: Path, *, x_test: np.ndarray, y_test: np.ndarray, probs: np.ndarray,
                  history: dict[str, list] | None, x_samples: np.ndarray | None = None,
                  y_samples: np.ndarray | None = None, extra: dict | None = None) -> dict:
    """Write metrics.json and the PNGs to ``out``; return the metrics."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = classification_metrics(y_test, probs)
    metrics.update(extra or {})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "per_class.txt").write_text(format_per_class(metrics["per_class"]) + "\n")
    if history:
        (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
        plot_history(history, out / "curves.png")
    accuracy = metrics["test_accuracy"]
    plot_confusion(np.array(metrics["confusion_matrix"]), out / "confusion_matrix.png",
                   f"MNIST test confusion matrix (accuracy {accuracy:.2%})")
    if x_samples is not None and y_samples is not None:
        plot_grid(x_samples[:40], [f"label {y}" for y in y_samples[:40]],
                  out / "samples.png", "Training inputs as the model sees them")
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_test)
    title = f"Misclassified test digits: {len(wrong)} of {len(y_test)}"
    # Most confident mistakes first: those are the ones worth looking at.
    wrong = wrong[np.argsort(-probs[wrong, y_pred[wrong]])][:60]
    plot_grid(x_test[wrong],
              [f"{y_pred[i]} (true {y_test[i]}) {probs[i, y_pred[i]]:.2f}" for i in wrong],
              out / "misclassified.png",
              title)
    return metrics
