"""MODEL_CARD.md, written from a model's sidecar so that every figure in it was measured."""

from __future__ import annotations

import json
from pathlib import Path

from convert import sidecar
from convert.tflite import ConversionError
from train.report import format_per_class


def _calibration(metrics: dict) -> str:
    found = metrics.get("calibration")
    if not found:
        return ""
    tried = ", ".join(f"{n}: {a:.2%}" for n, a in found["val_accuracy_by_samples"].items())
    return (f"int8 ranges were calibrated on {found['samples']:,} training digits, the sample "
            f"size whose int8 model read the validation digits best ({tried}).")


def _confidence(card: dict) -> list[str]:
    found = card.get("confidence")
    if not found:
        return []
    v = found["validation"]
    return [
        "## Confidence",
        "",
        f"The model ends in logits; the device takes softmax(logits / {found['temperature']}) on "
        "the host. The temperature and the uncertain threshold were chosen on "
        f"{found['chosen_on']}: {found['rule']}.",
        "",
        "| on those validation digits | value |",
        "| --- | --- |",
        f"| accuracy | {v['accuracy']:.2%} |",
        f"| readings flagged uncertain (confidence < {found['uncertain_below']:.4f}) | "
        f"{v['flagged_share']:.1%} |",
        f"| accuracy of the readings not flagged | {v['accuracy_not_flagged']:.2%} |",
        f"| negative log-likelihood, before / after the temperature | {v['nll_before']:.4f} / "
        f"{v['nll_after']:.4f} |",
        f"| expected calibration error, before / after | {v['ece_before']:.4f} / "
        f"{v['ece_after']:.4f} |",
        "",
    ]


def _first_look(card: dict) -> list[str]:
    look = card.get("first_look")
    if not look:
        return []
    rows = [f"| {at} | {v['settled_share']:.1%} | {v['changed']} |"
            for at, v in look["validation_by_accept_at"].items()]
    return [
        "## First look",
        "",
        f"`{look['model_file']}` ({look['bytes']:,} bytes, sha256 `{look['sha256']}`, its own "
        "sidecar beside it) is this model's small member converted alone. The device runs it "
        f"first; its answer is final at confidence ≥ {look['accept_at']}, and only the other "
        "digits go through this model (`python -m convert first-look`). The threshold was "
        f"chosen on {look['chosen_on']}: {look['rule']}.",
        "",
        "| threshold | validation digits settled by the first look | readings it changed |",
        "| --- | --- | --- |",
        *rows,
        "",
        f"It settles {look['test_settled_share']:.1%} of the MNIST test digits alone "
        "(measured, not chosen on).",
        "",
    ]


def _what(training: dict) -> str:
    """What the network is, in the card's first sentence."""
    if any("ensemble" in phase for phase in training.get("phases", [])):
        return "Two convolutional networks in one model, their logits averaged, that read"
    return "A convolutional network that reads"


def render(card: dict) -> str:
    m = card["metrics"]
    t = m.get("training", {})
    src = card["source"]
    lines = [
        f"# Model card: `{card['model_file']}`",
        "",
        f"{_what(t)} one handwritten digit (0-9) from a 28x28 grayscale",
        "image, quantized to full integer (int8 input, weights, activations and output) for",
        "LiteRT on a Raspberry Pi.",
        "",
        "## Figures (measured by `python -m convert`, LiteRT interpreter, full MNIST test set)",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| architecture | `{src['arch']}`, {t.get('params', 0):,} parameters |",
        f"| file size | {card['bytes']:,} bytes |",
        f"| LiteRT test accuracy ({card['quantization']}) | {m['tflite_test_accuracy']:.2%} "
        f"({m['test_errors']} errors in 10,000) |",
        f"| Keras float32 test accuracy | {m['float_test_accuracy']:.2%} |",
        f"| drop from quantization | {m['drop_pp']:+.3f} percentage points |",
        f"| agreement with the float model | {m['agreement_with_keras']:.2%} |",
        f"| validation accuracy (model selection) | {t.get('val_accuracy', float('nan')):.2%} |",
        f"| median time per digit (1 thread, workstation) | {m['median_us_per_digit']:.0f} µs |",
        f"| training time | {t.get('train_seconds', 0):.0f} s for {t.get('epochs_run', 0)} epochs "
        "on a 2-core CPU |",
        f"| sha256 | `{card['sha256']}` |",
        "",
        "## Data",
        "",
        "MNIST: 60,000 training digits, of which 10% (seeded) are held out for validation,",
        "early stopping and learning-rate reduction; the 10,000 test digits are used only for",
        f"the figures above. Data checksum `{m['data_checksum'][:16]}…`. {_calibration(m)}",
        "",
        "## Recipe",
        "",
        *_phases(t.get("phases", [])),
        f"Seed {t.get('seed')}, op determinism on. TensorFlow {src.get('tensorflow_version')}, "
        f"Keras {src.get('keras_version')}.",
        "",
        *_confidence(card),
        *_first_look(card),
        "## Input contract",
        "",
        "```json",
        json.dumps({"input": card["input"], "preprocessing": card["preprocessing"]}, indent=2),
        "```",
        "",
        "## Per-class report (LiteRT, MNIST test)",
        "",
        "```",
        format_per_class(m["per_class"]),
        "```",
        "",
        "## Known limitations",
        "",
        "- Trained on MNIST's training digits and on pictures generated from them, no other",
        "  data set: MNIST's writers were American, so styles they never used (an open-top 4, a",
        "  very long 1 flag) may still be misread; such readings tend to be flagged uncertain.",
        "- It reads one digit per 28x28 input: the device side finds and separates digits in a",
        "  frame first; touching digits become one blob and are misread.",
        "- It always answers a digit for an input; rejecting non-digits is the device",
        "  preprocessing's job (size, shape and ink checks).",
        "",
        "## Reproduce",
        "",
        "```sh",
        "make model   # python -m train --out runs/default && python -m convert ... && card",
        "```",
        "",
    ]
    return "\n".join(lines)


def _phases(phases: list[dict], indent: str = "") -> list[str]:
    lines = []
    for number, phase in enumerate(phases, 1):
        if joined := phase.get("ensemble"):
            lines.append(f"{indent}- Phase {number}: two models joined into one that averages "
                         "their logits (train/ensemble.py):")
            for role, member in joined.items():
                lines.append(f"{indent}  - the {role}, `{member['model']}` "
                             f"({member.get('arch') or 'architecture not on record'}):")
                # Nested in this list, so without the blank line that ends a list of phases.
                behind = _phases(member["phases"], indent + "    ")[:-1]
                lines += behind or [f"{indent}    - its training is not on record."]
            continue
        if blended := phase.get("blend"):
            lines.append(f"{indent}- Phase {number}: the weights blended, "
                         f"{1 - blended['weight']:g} of `{blended['base']}` and "
                         f"{blended['weight']:g} of `{blended['tuned']}` "
                         "(WiSE-FT, train/blend.py), BatchNorm statistics included.")
            continue
        r = phase.get("recipe") or {}
        augment = ("augmentation on (rotations up to 12°, zoom ±12%, shifts up to 10%, stroke "
                   f"thickening or thinning, strength {r.get('augment_strength', 1.0)})"
                   if r.get("augment") else "no augmentation")
        if r.get("styles"):
            augment += (f"; {r['styles']:.0%} of the 7s crossed and of the 1s given a long flag "
                        "(continental styles, train/styles.py)")
        if r.get("device_inputs"):
            augment += (f"; plus {r['device_inputs']:,} training digits restyled (elastic, "
                        "slant, stroke width, broken strokes, continental 7s and 1s), drawn into "
                        "pictures (files, crops, drawings, photos, either polarity) and cut out "
                        "again by the device's own preprocessing (train/device_inputs.py)")
        if r.get("teacher"):
            augment += (f"; distilled: trained towards the labels and the answers of the "
                        f"teacher `{r['teacher']}` on the same inputs (train/distill.py)")
        start = "from scratch"
        if phase.get("init_from"):
            # The first phase listed may continue a model whose own recipe is not on record.
            start = ("warm-started from the previous phase" if number > 1
                     else f"warm-started from `{phase['init_from']}`")
        lines += [
            f"{indent}- Phase {number}, {start}: {r.get('optimizer')} at "
            f"{r.get('learning_rate')}, batch {r.get('batch_size')}, at most {r.get('epochs')} "
            "epochs with early stopping "
            f"(patience {r.get('patience')}) and learning-rate halving (after "
            f"{r.get('lr_patience')} epochs) on validation loss; {augment}. Ran "
            f"{phase.get('epochs_run')} epochs in {phase.get('train_seconds') or 0:.0f} s.",
        ]
    return [*lines, ""]


def write_card(sidecar_path: Path, out: Path | None = None) -> Path:
    card = sidecar.read(sidecar_path)
    try:
        text = render(card)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # render only reads the sidecar, so any of these is a field missing or of a wrong type
        # (a hand-edited or foreign file), which the device's own check does not cover.
        raise ConversionError(
            f"sidecar {sidecar_path} lacks a figure the card needs or holds one of the wrong "
            f"type ({type(exc).__name__}: {exc}); write it again with python -m convert "
            "MODEL.keras") from None
    target = out or sidecar_path.parent / "MODEL_CARD.md"
    target.write_text(text)
    return target
