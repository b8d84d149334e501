"""A real Mosquitto broker for the tests (and bench/watch_cpu.py), and a subscriber that records.

The broker is Debian's `mosquitto` binary started directly with its own config file, on a free
loopback port, never as a system service. Without the binary, `require_mosquitto()` skips the
test and says how to install it (`.ci/run` does).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def require_mosquitto() -> None:
    import pytest

    if not Path(MOSQUITTO).is_file():
        pytest.skip("Debian's mosquitto broker is not installed (apt-get install mosquitto)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TlsFiles:
    cert: Path  # self-signed: it is its own CA
    key: Path


def self_signed_certificate(folder: Path, name: str = "localhost") -> TlsFiles:
    """A certificate for `name` only (not for 127.0.0.1), made with the openssl command."""
    import pytest

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed (apt-get install openssl)")
    files = TlsFiles(folder / f"{name}.crt", folder / f"{name}.key")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(files.key), "-out", str(files.cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )
    return files


class Mosquitto:
    """One broker on 127.0.0.1:<port>; stop() and start() again keep the port (an outage).

    Nothing is persisted: a restarted broker has no retained message but what clients send it
    again, which is what the reconnect test needs to see.
    """

    def __init__(self, folder: Path, users: dict[str, str] | None = None,
                 tls: TlsFiles | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.tls = tls
        self.log_path = folder / f"mosquitto-{self.port}.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto switches to the 'mosquitto' user, which cannot read
            # this test's files; it stays on the loopback port either way.
            lines.append("user root")
        if users:
            passwords = folder / f"passwords-{self.port}"
            passwords.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(passwords), user, password], check=True
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if tls is not None:
            lines += [f"certfile {tls.cert}", f"keyfile {tls.key}"]
        self.config = folder / f"mosquitto-{self.port}.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        credentials = f"{user}:{password}@" if user is not None else ""
        return f"{'mqtt' if self.tls is None else 'mqtts'}://{credentials}127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mosquitto exited:\n{self.log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen within {timeout} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """Subscribes to `topics` and keeps every message in arrival order.

    MQTT 5 with retain-as-published: a message the publisher sent retained arrives with its
    retain flag set even to a subscriber that was already there (MQTT 3 clears it).
    """

    def __init__(self, port: int, topics: list[str], user: str | None = None,
                 password: str | None = None, tls: TlsFiles | None = None) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Condition()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, password)
        if tls is not None:  # a TLS broker: trust its self-signed certificate
            self.client.tls_set(ca_certs=str(tls.cert))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        # The certificate names 'localhost', not 127.0.0.1.
        self.client.connect("127.0.0.1" if tls is None else "localhost", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("the test subscriber did not get a SUBACK")

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        client.subscribe([(topic, options) for topic in self._topics])

    def _on_message(self, _client: paho.Client, _userdata: Any, message: Any) -> None:
        with self._lock:
            self.messages.append(
                Message(message.topic, bytes(message.payload), bool(message.retain),
                        time.monotonic())
            )
            self._lock.notify_all()

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, check: Any, timeout: float, what: str) -> Any:
        """Waits until check(messages) returns something truthy; returns it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                result = check(list(self.messages))
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    topics = [(m.topic, m.payload[:80]) for m in self.messages[-10:]]
                    raise AssertionError(f"timed out waiting for {what}; last: {topics}")
                self._lock.wait(min(remaining, 0.5))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
