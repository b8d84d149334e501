"""The README's commands, run as a newcomer runs them after the Quickstart: every ```sh and
```console block, top to bottom, in one shell session, in a fresh checkout, exactly as written.

- The checkout holds what git would commit (tracked files and new ones not ignored: no runs/,
  no caches) beside `../shared` as in CI; `.venv` is the venv the Quickstart's `make` built
  (this suite's own). The shell starts with a bare environment (PATH, an empty HOME: no Keras
  cache, no MNIST_DATA_DIR from make), so whatever a command needs, the README must say.
- A block runs unless a marker comment right above it says otherwise:
  `<!-- readme-test: not-run REASON -->` for what cannot run here (NOT_RUN says why), or
  `<!-- readme-test: service ARGS -->` to start `python -m device serve ARGS` first, on a free
  port instead of 8000 (its commands' `127.0.0.1:8000` are rewritten to that port).
- `sh` blocks: every command must exit 0. `console` blocks: each `$ command` must exit 0 (or
  the status its trailing `# exits N` comment names) and print what the README shows after it:
  JSON compared as JSON (same keys everywhere; timings and timestamps may differ), HTTP status
  and shown headers as shown, other text line by line where `...` stands for anything.
- After the run, what the README promises of its results is checked (AFTER_THE_RUN).

After a change that alters answers (a new model: its sha256, its confidences), run this test
with `README_RECAPTURE=1`: a command whose answer is one line of JSON and differs has that line
rewritten in README.md with what it printed, and the run goes on; review the diff.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from service_helpers import free_port

from tests.conftest import REPO

README = REPO / "README.md"
NOT_RUN = {
    "quickstart": "`make test` is this suite, this test included; `make serve` runs until "
    "stopped (tests/test_makefile.py starts it and checks its host, port and .env)",
    "pi": "needs a Raspberry Pi: its camera, the installed service under systemd, journald",
    "sudo": "installs system-wide as root (tests/test_systemd_install.py runs the installer "
    "into a scratch root instead)",
    "hours": "trains on all 60,000 digits: from 10 minutes to 45 and more on 2 cores",
    "gpu": "trains on all 60,000 digits with PyTorch, meant for a GPU (tests/test_on_torch.py "
    "runs the same commands on PyTorch's CPU build with --limit)",
    "broker": "answers of the demo service above, run with an MQTT broker on 127.0.0.1:1883 "
    "(tests/test_mqtt.py checks the same answers against a real mosquitto it starts)",
}
COMMAND_TIMEOUT_S = 300
MARKER = re.compile(r"<!--\s*readme-test:\s*(\S+)\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
EXPECTED_EXIT = re.compile(r"#\s*exits (\d+)\s*$")
# JSON fields whose values differ from run to run: only their type is compared.
VOLATILE_KEYS = {"timings_ms", "ts", "duration_ms"}
QUICK_TRAINING = "python -m train --loop custom --limit 2000 --epochs 2"


@dataclass
class Block:
    line: int  # where the fence opens in README.md, for messages
    language: str
    lines: list[str]
    marker: tuple[str, str] | None = None  # (kind, argument)

    def commands(self) -> list[tuple[str, list[str]]]:
        """(command, expected output lines): for sh, every command line; continuation lines
        (trailing backslash) are joined."""
        found: list[tuple[str, list[str]]] = []
        pending = ""
        for raw in self.lines:
            if self.language == "console":
                if raw.startswith("$ "):
                    found.append((raw[2:], []))
                elif pending:
                    found[-1] = (found[-1][0] + "\n" + raw, [])
                elif found:
                    found[-1][1].append(raw)
                pending = raw if raw.endswith("\\") else ""
                continue
            text = pending + raw
            if text.endswith("\\"):
                pending = text + "\n"
                continue
            pending = ""
            if text.strip() and not text.lstrip().startswith("#"):
                found.append((text, []))
        return found


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    marker = None
    current: Block | None = None
    for number, line in enumerate(README.read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if current is not None:
            if fence:
                blocks.append(current)
                current = None
            else:
                current.lines.append(line)
            continue
        if fence and fence.group(1) in {"sh", "console"}:
            current = Block(number, fence.group(1), [], marker)
            marker = None
        elif found := MARKER.search(line):
            marker = (found.group(1), found.group(2))
        elif line.strip() and not fence:
            marker = None  # a marker belongs to the block right below it
    return blocks


# ---- comparing what was printed with what the README shows ---------------------------------


def json_differences(shown: object, got: object, where: str = "") -> list[str]:
    if isinstance(shown, dict) and isinstance(got, dict):
        if set(shown) != set(got):
            return [f"{where or 'top'}: keys {sorted(shown)} shown, {sorted(got)} printed"]
        problems = []
        for key in shown:
            if key in VOLATILE_KEYS:
                if type(shown[key]) is not type(got[key]):
                    problems.append(f"{where}.{key}: a {type(got[key]).__name__} printed")
                continue
            problems += json_differences(shown[key], got[key], f"{where}.{key}")
        return problems
    if isinstance(shown, list) and isinstance(got, list) and len(shown) == len(got):
        return [p for i, (a, b) in enumerate(zip(shown, got, strict=True))
                for p in json_differences(a, b, f"{where}[{i}]")]
    return [] if shown == got else [f"{where or 'value'}: {shown!r} shown, {got!r} printed"]


def text_matches(shown: list[str], got: list[str]) -> bool:
    """Line by line, `...` standing for any text (a line of only `...`: any lines)."""
    pattern = "\n".join(
        r"(?:.*\n)*?.*" if line.strip() == "..." else ".*?".join(map(re.escape, line.split("...")))
        for line in shown
    )
    return re.fullmatch(pattern, "\n".join(got)) is not None


def output_problems(shown: list[str], printed: str) -> list[str]:
    got = [line.rstrip() for line in printed.rstrip("\n").splitlines()]
    shown = [line.rstrip() for line in shown]
    if shown and shown[0].startswith("HTTP/"):
        split = shown.index("") if "" in shown else len(shown)
        got_split = got.index("") if "" in got else len(got)
        problems = [] if got[:1] == shown[:1] else [f"status {got[:1]} printed"]
        headers = {line.lower() for line in got[1:got_split]}
        problems += [f"header {line!r} missing" for line in shown[1:split]
                     if line.lower() not in headers]
        return problems + output_problems(shown[split + 1:], "\n".join(got[got_split + 1:]))
    if not shown:
        return []
    try:
        expected = json.loads("\n".join(shown))
    except json.JSONDecodeError:
        return [] if text_matches(shown, got) else ["the text differs"]
    try:
        actual = json.loads("\n".join(got))
    except json.JSONDecodeError:
        return ["JSON shown, something else printed"]
    return json_differences(expected, actual)


# ---- the newcomer's shell ----------------------------------------------------------------


ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def as_seen(printed: bytes) -> str:
    """What a terminal shows of `printed`: no colour or bold codes, and of a line redrawn with
    carriage returns (a progress bar) its last state."""
    # A terminal ends lines with \r\n; HTTP headers arrive with their own \r before it.
    text = re.sub(r"\r+\n", "\n", ESCAPES.sub("", printed.decode("utf-8", errors="replace")))
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


@dataclass
class Shell:
    """One terminal: commands run one after another; exported variables and `cd` persist."""

    cwd: Path
    env: dict[str, str]
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.cwd.parent / "shell-state"
        self.state.mkdir(exist_ok=True)

    def run(self, command: str) -> subprocess.CompletedProcess:
        """Runs `command` on a terminal (a pseudo-terminal), as a person pastes it: programs
        print what they print on one (curl shows no progress meter, for instance)."""
        script = (f"{command}\n__status=$?\n"
                  f"env -0 > {self.state}/env\npwd > {self.state}/pwd\nexit $__status\n")
        controller, terminal = pty.openpty()
        process = subprocess.Popen(["bash", "-o", "pipefail", "-c", script], cwd=self.cwd,
                                   env=self.env, stdin=terminal, stdout=terminal,
                                   stderr=terminal, start_new_session=True)
        os.close(terminal)
        printed = bytearray()
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if select.select([controller], [], [], 1.0)[0]:
                    try:
                        chunk = os.read(controller, 65536)
                    except OSError:  # the terminal closed: every process on it is gone
                        break
                    if not chunk:
                        break
                    printed += chunk
            else:
                os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(f"{command}: still running after {COMMAND_TIMEOUT_S} s")
            status = process.wait(COMMAND_TIMEOUT_S)
        finally:
            os.close(controller)
        environment = (self.state / "env").read_text().split("\0")
        self.env = dict(entry.split("=", 1) for entry in environment if "=" in entry)
        self.cwd = Path((self.state / "pwd").read_text().strip())
        return subprocess.CompletedProcess(command, status, as_seen(bytes(printed)))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a fresh clone holds (the work tree's files git would commit), beside ../shared,
    with the venv the Quickstart's make created."""
    root = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    tree = root / "pi-digits"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a file deleted but not yet committed is not in a clone either
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    (tree / ".venv").symlink_to(REPO / ".venv")
    (root / "shared").symlink_to(REPO.parent / "shared")
    return tree


@dataclass
class Service:
    process: subprocess.Popen
    port: int
    log: Path


def start_service(shell: Shell, arguments: str, log: Path) -> Service:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            f".venv/bin/python -m device serve --port {port} {arguments}", shell=True,
            cwd=shell.cwd, env=shell.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return Service(process, port, log)
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the service did not start:\n{log.read_text()}")


def stop(service: Service) -> None:
    os.killpg(service.process.pid, signal.SIGTERM)
    service.process.wait(30)


def run_readme(tree: Path) -> Iterator[str]:
    """Runs every block; yields one line per command (for the report), raises on a failure."""
    home = tree.parent / "home"
    home.mkdir(exist_ok=True)
    shell = Shell(tree, {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
                         "LANG": "C.UTF-8", "TERM": "dumb"})
    for block in readme_blocks():
        kind, argument = block.marker or ("run", "")
        if kind == "not-run":
            assert argument in NOT_RUN, f"README.md:{block.line}: say why it is not run"
            yield f"README.md:{block.line}: not run ({argument})"
            continue
        assert kind in {"run", "service"}, f"README.md:{block.line}: unknown marker {kind}"
        service = None
        if kind == "service":
            service = start_service(shell, argument, tree.parent / f"service-{block.line}.log")
        try:
            for command, shown in block.commands():
                expected_status = EXPECTED_EXIT.search(command.splitlines()[-1])
                run = command
                if service is not None:
                    run = command.replace("127.0.0.1:8000", f"127.0.0.1:{service.port}")
                started = time.monotonic()
                done = shell.run(run)
                where = f"README.md:{block.line}: {command}"
                status = int(expected_status.group(1)) if expected_status else 0
                assert done.returncode == status, (
                    f"{where}\nexited {done.returncode}:\n{done.stdout[-3000:]}")
                problems = output_problems(shown, done.stdout)
                if problems and recapture(shown, done.stdout):
                    problems = []
                assert not problems, (f"{where}\nprinted something else than the README shows"
                                      f" ({'; '.join(problems)}):\n{done.stdout[-3000:]}")
                yield f"{where} ({time.monotonic() - started:.0f} s)"
        finally:
            if service is not None:
                stop(service)


def recapture(shown: list[str], printed: str) -> bool:
    """With README_RECAPTURE set: put a one-line JSON answer into README.md as printed."""
    got = printed.strip().splitlines()
    if not (os.environ.get("README_RECAPTURE") and len(shown) == len(got) == 1):
        return False
    try:
        json.loads(got[0])
    except ValueError:
        return False
    text = README.read_text()
    if shown[0] not in text:
        return False
    README.write_text(text.replace(shown[0], got[0]))  # the same answer shown twice: both
    return True


def after_the_run(tree: Path) -> None:
    """What the README promises of its commands' results."""
    metrics = json.loads((tree / "runs" / "latest" / "metrics.json").read_text())
    # The quick example must give a usable model (it once ended at 11.7%, every digit a 1).
    assert metrics["test_accuracy"] >= 0.85, metrics["test_accuracy"]
    # The figures the README quotes for it are the ones it printed: training is deterministic
    # on one kind of CPU, and the paragraph names the pair for each kind it was run on.
    text = " ".join(README.read_text().split())
    start = text.index("Of its 2,000 test digits the quick run reads")
    paragraph = text[start:text.index("The real thing takes longer", start)]
    quoted = f"{metrics['test_accuracy']:.2%} (validation {metrics['val_accuracy']:.2%})"
    assert quoted in paragraph, (quoted, paragraph)


@pytest.mark.slow
def test_every_readme_command_works_as_written(checkout: Path) -> None:
    assert QUICK_TRAINING in README.read_text()
    report = list(run_readme(checkout))
    after_the_run(checkout)
    print("\n".join(report))


def test_every_block_that_is_not_run_says_why() -> None:
    blocks = readme_blocks()
    assert len(blocks) > 10
    reasons = [b.marker[1] for b in blocks if b.marker and b.marker[0] == "not-run"]
    assert set(reasons) <= set(NOT_RUN)
    kinds = {b.marker[0] if b.marker else "run" for b in blocks}
    assert kinds == {"run", "service", "not-run"}


@pytest.mark.parametrize(("shown", "printed", "problems"), [
    (['{"a": 1, "timings_ms": {"x": 1.5}}'], '{"a":1,"timings_ms":{"x":2.25}}', []),
    (['{"a": 1}'], '{"a": 2}', [".a: 1 shown, 2 printed"]),
    (['{"a": 1}'], '{"a": 1, "b": 2}', ["top: keys ['a'] shown, ['a', 'b'] printed"]),
    (["x: digit 7; total ... ms"], "x: digit 7; total 3.2 ms\n", []),
    (["x: digit 7; total ... ms"], "x: digit 1; total 3.2 ms\n", ["the text differs"]),
    (["first", "...", "last"], "first\nnoise\nmore noise\nlast\n", []),
    (["HTTP/1.1 415 Unsupported Media Type", "content-type: application/json", "", '{"e": 1}'],
     "HTTP/1.1 415 Unsupported Media Type\ndate: now\ncontent-type: application/json\n\n"
     '{"e":1}', []),
    (["HTTP/1.1 200 OK", "", "{}"], "HTTP/1.1 404 Not Found\n\n{}",
     ["status ['HTTP/1.1 404 Not Found'] printed"]),
])
def test_outputs_are_compared_as_the_readme_promises(
    shown: list[str], printed: str, problems: list[str]
) -> None:
    assert output_problems(shown, printed) == problems


def test_output_is_compared_as_a_terminal_shows_it() -> None:
    assert as_seen(b"\x1b[1mdate\x1b[0m: now\r\r\n 1/2 [==  ]\r 2/2 [====]\r\n") == (
        "date: now\n 2/2 [====]\n")


def test_console_commands_and_their_output_are_told_apart() -> None:
    block = Block(1, "console", ["$ curl a \\", "  -F b", '{"x": 1}', "$ true   # exits 0"])
    assert block.commands() == [("curl a \\\n  -F b", ['{"x": 1}']), ("true   # exits 0", [])]
    sh = Block(1, "sh", ["# a comment", "make model   # trains", "python x \\", "    --y", ""])
    assert sh.commands() == [("make model   # trains", []), ("python x \\\n    --y", [])]


def test_the_quickstart_is_what_make_offers() -> None:
    # The commands a marker keeps from running here are still checked for existence.
    makefile = (REPO / "Makefile").read_text()
    for block in readme_blocks():
        for command, _ in block.commands():
            if command.startswith("make "):
                target = command.split()[1]
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), command
