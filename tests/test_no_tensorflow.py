"""Every device/ module imports, and a prediction runs, with TensorFlow and Keras unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PROBE = r"""
import importlib, json, pkgutil, sys
from pathlib import Path

class NoTensorFlow:
    # Any attempt to import tensorflow or keras (or a submodule) fails as on a bare Pi.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "keras", "tf_keras"}:
            raise ImportError(f"{name} is blocked: the device must not need it")
        return None

sys.meta_path.insert(0, NoTensorFlow())

import numpy as np
import device
from device.reader import DigitReader
from device.runtime import DigitModel

imported = []
for info in pkgutil.walk_packages(device.__path__, "device."):
    if info.name.endswith("__main__"):
        continue  # a program, not a library module: importing it would run it
    importlib.import_module(info.name)
    imported.append(info.name)

model = DigitModel(Path(sys.argv[1]))
frame = np.full((120, 160), 230, np.uint8)
frame[30:90, 75:83] = 20  # a plain vertical bar, read as some digit
reading = DigitReader(model).read(frame)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras"})
print(json.dumps({"imported": imported, "runtime": model.runtime,
                  "digits": len(reading.digits), "leaked": leaked}))
"""


def test_device_package_never_needs_tensorflow(digit_model_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(digit_model_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["leaked"] == []
    assert result["runtime"] == "ai_edge_litert"
    assert result["digits"] == 1
    expected = {
        "device.runtime", "device.sidecar", "device.reader", "device.preprocess",
        "device.cameras.base",
    }
    assert expected <= set(result["imported"])
    modules = {p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
               for p in (REPO / "device").rglob("*.py")
               if p.name not in {"__init__.py", "__main__.py"}}
    assert modules <= set(result["imported"]), modules - set(result["imported"])
