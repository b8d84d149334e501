"""The model's JSON sidecar: the only contract between the workstation and the device."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_FORMAT_VERSION = 1
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class ModelError(Exception):
    """The model or its sidecar is missing, unreadable or inconsistent (message says how to fix)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Sidecar:
    raw: dict
    sha256: str
    labels: list[str]
    preprocessing: dict = field(default_factory=dict)
    # From the sidecar's "confidence" block, written by a calibrated conversion: the model ends
    # in logits, softmax(logits / temperature) is the confidence, and a reading below
    # uncertain_below is flagged uncertain. None when the model predates calibration.
    temperature: float | None = None
    uncertain_below: float | None = None
    # From the "first_look" block (`python -m convert first-look`): a cheaper model, with its
    # own sidecar beside this one, whose reading is final at confidence >= accept_at; this
    # model runs only for the digits it is less sure of. None when there is no first look.
    first_look: FirstLook | None = None

    @classmethod
    def load(cls, path: Path) -> Sidecar:
        """Parse and validate ``<model>.json``; raises ModelError naming the file and the fault."""
        path = Path(path)
        fix = "re-export it with `python -m convert` or copy it from models/"
        if not path.is_file():
            raise ModelError(f"model sidecar {path} not found; {fix}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"model sidecar {path} is not valid JSON ({exc}); {fix}") from exc
        if not isinstance(raw, dict):
            raise ModelError(f"model sidecar {path} must hold a JSON object; {fix}")
        version = raw.get("format_version")
        if version != SUPPORTED_FORMAT_VERSION:
            raise ModelError(
                f"model sidecar {path} has format_version {version!r}, this device reads "
                f"{SUPPORTED_FORMAT_VERSION}; {fix}"
            )
        sha = raw.get("sha256")
        if not isinstance(sha, str) or not _SHA256_RE.match(sha):
            raise ModelError(f"model sidecar {path}: 'sha256' is not a sha256 hex digest; {fix}")
        labels = raw.get("labels")
        if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
            raise ModelError(f"model sidecar {path}: 'labels' must be a list of strings; {fix}")
        preprocessing = raw.get("preprocessing", {})
        if not isinstance(preprocessing, dict):
            raise ModelError(f"model sidecar {path}: 'preprocessing' must be an object; {fix}")
        confidence = raw.get("confidence", {})
        numbers = ({k: confidence.get(k) for k in ("temperature", "uncertain_below")}
                   if isinstance(confidence, dict) else None)
        if numbers is None or not all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v > 0)
            for v in numbers.values()
        ):
            raise ModelError(f"model sidecar {path}: 'confidence' must hold positive numbers "
                             f"'temperature' and 'uncertain_below'; {fix}")
        return cls(raw=raw, sha256=sha, labels=list(labels), preprocessing=dict(preprocessing),
                   first_look=FirstLook.parse(raw.get("first_look"), path, fix), **numbers)


@dataclass(frozen=True)
class FirstLook:
    model_file: str  # a file name in the sidecar's own folder
    sha256: str
    accept_at: float

    @classmethod
    def parse(cls, block: object, path: Path, fix: str) -> FirstLook | None:
        if block is None:
            return None
        problem = f"model sidecar {path}: 'first_look' must name a 'model_file' beside it, its "
        if not isinstance(block, dict):
            raise ModelError(f"{problem}'sha256' and 'accept_at' in (0, 1]; {fix}")
        name, sha, accept_at = (block.get(k) for k in ("model_file", "sha256", "accept_at"))
        if not (isinstance(name, str) and name and Path(name).name == name
                and isinstance(sha, str) and _SHA256_RE.match(sha)
                and isinstance(accept_at, int | float) and not isinstance(accept_at, bool)
                and 0 < accept_at <= 1):
            raise ModelError(f"{problem}'sha256' and 'accept_at' in (0, 1]; {fix}")
        return cls(model_file=name, sha256=sha, accept_at=float(accept_at))
