"""Every command's --help: instant (no TensorFlow), quiet, every flag explained, every
subcommand named in the usage, no reStructuredText markup leaking into the text."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO
from train.__main__ import blend_parser, ensemble_parser, train_parser

HELP_PAGES = [
    ("train",), ("train", "evaluate"),
    ("convert",), ("convert", "evaluate"), ("convert", "compare"), ("convert", "card"),
    ("device",), ("device", "predict"), ("device", "capture"), ("device", "serve"),
    ("train.on_torch",), ("train.on_torch", "device-inputs"),
]  # fmt: skip


def undocumented_options(help_text: str) -> list[str]:
    """Options whose --help line has no explanation (argparse prints a long option's
    explanation on the next line, indented)."""
    lines = help_text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        if not line.startswith("  -"):
            continue
        option, _, explanation = line.strip().partition("  ")
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not explanation.strip() and not following.startswith(" " * 10):
            missing.append(option)
    return missing


@pytest.mark.parametrize("command", HELP_PAGES, ids=" ".join)
def test_help_explains_every_flag(command: tuple[str, ...]) -> None:
    done = subprocess.run([sys.executable, "-m", *command, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no CUDA probing, no C++ start-up chatter
    assert "``" not in done.stdout
    assert undocumented_options(done.stdout) == []


@pytest.mark.parametrize(("module", "commands"), [
    ("train", ["evaluate"]),
    ("convert", ["evaluate", "compare", "card"]),
    ("device", ["predict", "capture", "serve"]),
    ("train.on_torch", ["device-inputs"]),
])
def test_usage_names_every_subcommand(module: str, commands: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    usage = done.stdout.split("\n\n")[0] + done.stdout  # the usage, or the command list
    for command in commands:
        assert command in usage


@pytest.mark.parametrize("module", ["train", "convert"])
def test_help_and_argument_errors_do_not_import_tensorflow(module: str) -> None:
    probe = (f"import sys\nfrom {module}.__main__ import main\n"
             "for argv in (['--help'], ['--bogus-flag']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print('LOADED', sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


def documented_train_commands(markdown: str) -> list[list[str]]:
    """The `python -m train …` lines of a document's code blocks, continuations joined, as
    argument lists after `python -m train`."""
    blocks = re.findall(r"^```\n(.*?)^```", markdown, flags=re.M | re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[3:] for line in lines
            if line.startswith("python -m train")]


def test_the_candidates_training_commands_still_parse() -> None:
    """docs/CANDIDATES.md says how each model it reports was trained: its commands must keep
    meaning that when a flag is renamed (parsed only; each run takes an hour)."""
    commands = documented_train_commands((REPO / "docs" / "CANDIDATES.md").read_text())
    assert len(commands) >= 5
    for argv in commands:
        if argv[:1] == ["blend"]:
            blend_parser().parse_args(argv[1:])
        elif argv[:1] == ["ensemble"]:
            ensemble_parser().parse_args(argv[1:])
        else:
            train_parser().parse_args(argv)
