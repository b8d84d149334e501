"""bench/arm64/compare_runs.py: one column per Debian suite, and any differing prediction on
any suite fails the proof."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench" / "arm64"))
import compare_runs


def _run(folder: Path, system: str, numpy: str, predictions: list[int]) -> Path:
    folder.mkdir()
    summary = {"system": system, "python": "3.x", "numpy": numpy, "opencv": "4.11.0",
               "runtime": "ai_edge_litert", "model": "digitnet_int8", "model_sha256": "ab" * 32,
               "first_look_sha256": "cd" * 32, "answered": {"first_look": 2, "model": 1},
               "mnist_test": {"count": 3, "correct": 3, "accuracy": 1.0, "wall_s": 1.0}}
    (folder / "summary.json").write_text(json.dumps(summary))
    np.save(folder / "mnist_test_predictions.npy", np.array(predictions, np.int8))
    return folder


@pytest.mark.parametrize(("trixie", "status"), [([1, 2, 3], 0), ([1, 2, 4], 1)])
def test_every_suite_must_predict_what_x86_predicts(
    tmp_path: Path, trixie: list[int], status: int
) -> None:
    x86 = _run(tmp_path / "x86_64", "Debian GNU/Linux 12 (bookworm)", "2.4.6", [1, 2, 3])
    bookworm = _run(tmp_path / "bookworm", "Debian GNU/Linux 12 (bookworm)", "1.24.2", [1, 2, 3])
    later = _run(tmp_path / "trixie", "Debian GNU/Linux 13 (trixie)", "2.2.4", trixie)
    doc = tmp_path / "ARM64.md"
    doc.write_text("old\n\n## The installer\n\nkept as it was\n")
    code = compare_runs.main([str(x86), str(bookworm), str(later), "--doc", str(doc)])
    text = doc.read_text()
    assert code == status
    assert "| Python / numpy / OpenCV | 3.x / 2.4.6 / 4.11.0 | 3.x / 1.24.2 / 4.11.0 | " in text
    assert "aarch64 (qemu): Debian GNU/Linux 13 (trixie)" in text
    same = "3/3" if status == 0 else "2/3"
    assert f"| MNIST test digits: same prediction as x86_64 |  | 3/3 | {same} |" in text
    assert ("**Identical predictions on bookworm and trixie" in text) == (status == 0)
    assert "| digits answered by the first look / the whole model | 2 / 1 | 2 / 1 | 2 / 1 |" in text
    # The installer's section (bench/arm64/installer_chroot.sh) survives a new proof.
    assert text.endswith("## The installer\n\nkept as it was\n")


def test_a_run_with_another_first_look_is_refused(tmp_path: Path) -> None:
    x86 = _run(tmp_path / "x86_64", "Debian GNU/Linux 12 (bookworm)", "2.4.6", [1, 2, 3])
    arm = _run(tmp_path / "bookworm", "Debian GNU/Linux 12 (bookworm)", "1.24.2", [1, 2, 3])
    summary = json.loads((arm / "summary.json").read_text())
    (arm / "summary.json").write_text(json.dumps({**summary, "first_look_sha256": None}))
    with pytest.raises(SystemExit, match="another model"):
        compare_runs.compare(x86, [arm])
