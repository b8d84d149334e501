"""An earlier commit's source tree, taken out of git, so a benchmark can run it beside today's."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def export_revision(rev: str, into: Path) -> tuple[str, Path]:
    """The full commit id of `rev` and a folder holding its tree (exported once per commit)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        raise SystemExit(f"no commit {rev!r} in {REPO}: a shallow clone lacks the history "
                         "(git fetch --unshallow), or name another revision") from None
    tree = into / commit[:12]
    if not (tree / "device").is_dir():
        archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO,
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
    return commit, tree
