"""The watch loop, /reading, /readings/stream and MQTT on a real service (uvicorn on loopback,
a video-file camera) against a real Mosquitto broker started here (tests/mqtt_helpers.py).

The video is read one frame per capture, so at any watch rate the loop sees exactly the frames
written, in order: what becomes a stable reading is decided by the video alone, and the expected
sequence below is written by hand from it.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from mqtt_helpers import Mosquitto, Recorder, require_mosquitto, self_signed_certificate
from preview_helpers import readable_digits, write_segments_video
from service_helpers import Service
from test_watch import check_discovery, render

NODE = "testnode"
STATE = f"digits/{NODE}/state"
CAMERA = f"digits/{NODE}/camera"
AVAILABILITY = f"digits/{NODE}/availability"
K = 3
# Fast enough for a short test; the frames, not the rate, decide what is read.
WATCH_FPS = "10"


# The video: (label, frames); None is blank paper.
SEGMENTS: list[tuple[int | None, int]] = [
    (3, 5),
    (None, 4),
    (1, 1),  # a flicker between two stretches of nothing
    (None, 4),
    (7, 5),
    (3, 1),  # a flicker inside a stable 7
    (7, 4),
]
# One pass of the video, then the camera starts it again: 3, nothing, 7, 3, nothing, 7, ...
EXPECTED_CYCLE = ["3", None, "7"]


def read_video(model: Path, video: Path) -> list[tuple[str | None, bool | None]]:
    """(number, uncertain) of every frame of `video` as the service's reader sees it."""
    from device.reader import DigitReader
    from device.runtime import DigitModel

    reader = DigitReader(DigitModel(model))
    capture = cv2.VideoCapture(str(video))
    seen = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        reading = reader.read(frame)
        seen.append((reading.number, reading.uncertain))
    capture.release()
    return seen


@pytest.fixture(scope="module")
def digits(digit_model_path: Path, mnist_dir: Path) -> dict[int, np.ndarray]:
    return readable_digits(digit_model_path, mnist_dir, [1, 3, 7])


@pytest.fixture(scope="module")
def sequence_video(
    tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path,
    digits: dict[int, np.ndarray],
) -> Path:
    video = write_segments_video(
        tmp_path_factory.mktemp("watch_video") / "sequence.avi",
        [(None if label is None else digits[label], count) for label, count in SEGMENTS],
    )
    # The premise of the expected sequence: every frame reads as drawn, none uncertain.
    drawn = [(None, None) if label is None else (str(label), False)
             for label, count in SEGMENTS for _ in range(count)]
    assert read_video(digit_model_path, video) == drawn
    return video


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    require_mosquitto()
    with Mosquitto(tmp_path_factory.mktemp("broker")) as mosquitto:
        yield mosquitto


@pytest.fixture(scope="module")
def watched(
    tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path, sequence_video: Path,
    broker: Mosquitto,
) -> Iterator[tuple[Service, Recorder]]:
    """The service watching the sequence video and publishing; a recorder subscribed first."""
    recorder = Recorder(broker.port, ["digits/#", "homeassistant/#"])
    service = Service(
        tmp_path_factory.mktemp("watched"), digit_model_path,
        "--camera", f"opencv:{sequence_video}", "--mqtt-url", broker.url(),
        "--mqtt-node-id", NODE,
        env={"DIGITS_WATCH_FPS": WATCH_FPS, "DIGITS_WATCH_STABLE_FRAMES": str(K)},
    )
    try:
        service.wait_listening()
        yield service, recorder
    finally:
        service.stop()
        recorder.close()


def states(recorder: Recorder, count: int, timeout: float = 60.0) -> list[dict]:
    messages = recorder.wait_for(
        lambda messages: [m for m in messages if m.topic == STATE][:count]
        if sum(m.topic == STATE for m in messages) >= count else None,
        timeout, f"{count} state messages",
    )
    assert all(m.retain for m in messages), "every state message is retained"
    return [m.json() for m in messages]


def test_known_digits_in_sequence_give_exactly_the_expected_retained_states(
    watched: tuple[Service, Recorder], broker: Mosquitto
) -> None:
    _, recorder = watched
    published = states(recorder, 2 * len(EXPECTED_CYCLE))
    assert [state["number"] for state in published] == EXPECTED_CYCLE * 2
    assert [state["seq"] for state in published] == list(range(1, 7))
    assert all(state["frames_confirmed"] == K for state in published)
    since = [state["since"] for state in published]
    assert since == sorted(since)
    assert published[0]["digits"][0]["digit"] == 3
    assert set(published[0]["digits"][0]["box"]) == {"x", "y", "w", "h"}
    assert published[1]["digits"] == [] and published[1]["confidence"] is None
    # A client connecting now gets the current state from the broker, retained.
    late = Recorder(broker.port, [STATE])
    try:
        kept = late.wait_for(lambda messages: messages, 10, "the retained state")[0]
        assert kept.retain
        seq = kept.json()["seq"]
        assert seq >= published[-1]["seq"]
        same = recorder.wait_for(
            lambda messages: [m for m in messages if m.topic == STATE and m.json()["seq"] == seq],
            10, f"state {seq} on the first subscriber",
        )
        assert kept.payload == same[0].payload  # the retained state is the latest published
    finally:
        late.close()


def test_a_digit_shown_for_one_frame_produces_no_state(
    watched: tuple[Service, Recorder],
) -> None:
    service, recorder = watched
    published = [state["number"] for state in states(recorder, 3 * len(EXPECTED_CYCLE))]
    assert "1" not in published  # flashed between two stretches of nothing
    assert published == EXPECTED_CYCLE * 3  # the 3 flashed inside the 7 changed nothing
    metrics = httpx.get(service.base_url + "/metrics", timeout=30).text
    changes = float(re.search(r"^digits_stable_reading_changes_total (\S+)", metrics, re.M)[1])
    assert changes == len(recorder.on(STATE))


def test_discovery_configs_parse_as_home_assistant_expects(
    watched: tuple[Service, Recorder],
) -> None:
    _, recorder = watched
    states(recorder, 3)

    def discovery(messages: list) -> dict | None:
        configs = {m.topic: m for m in messages if m.topic.startswith("homeassistant/")}
        return configs if len(configs) == 3 else None

    messages = recorder.wait_for(discovery, 30, "three discovery configs")
    assert all(m.retain for m in messages.values())
    retained = {topic: recorder.on(topic)[-1].payload.decode()
                for topic in (STATE, CAMERA, AVAILABILITY)}
    entities = check_discovery(
        {topic: m.json() for topic, m in messages.items()}, "homeassistant", retained
    )
    assert entities["number"]["state_topic"] == STATE
    assert entities["camera"]["state_topic"] == CAMERA
    state = retained[STATE]
    expected = json.loads(state)["number"]
    assert render(entities["number"]["value_template"], state) == str(expected)
    assert render(entities["camera"]["value_template"], retained[CAMERA]) == "OFF"  # no problem
    # Home Assistant announcing itself gets the configs again.
    before = len(recorder.on(f"homeassistant/sensor/{NODE}/number/config"))
    recorder.client.publish("homeassistant/status", "online")
    recorder.wait_for(
        lambda _: len(recorder.on(f"homeassistant/sensor/{NODE}/number/config")) > before,
        30, "discovery re-sent after homeassistant/status online",
    )


def test_reading_answers_the_stable_reading_without_capturing(
    watched: tuple[Service, Recorder],
) -> None:
    service, recorder = watched
    states(recorder, 1)
    answer = httpx.get(service.base_url + "/reading", timeout=30)
    assert answer.status_code == 200
    body = answer.json()
    assert body["number"] in EXPECTED_CYCLE
    assert body["frames_confirmed"] >= K and body["last_seen"] >= body["since"]
    ready = httpx.get(service.base_url + "/readyz", timeout=30).json()
    assert ready["watch"]["stable_frames"] == K
    (mqtt,) = ready["publishers"]
    assert mqtt["connected"] and mqtt["state"] == "connected"
    assert mqtt["broker"] == f"mqtt://127.0.0.1:{mqtt['broker'].rsplit(':', 1)[1]}"


def sse_events(base_url: str, seconds: float, out: list[tuple[str, dict]]) -> None:
    """(id, data) of each `reading` event received within `seconds`."""
    with httpx.stream("GET", base_url + "/readings/stream", timeout=30) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        until = time.monotonic() + seconds
        event: dict[str, str] = {}
        for line in answer.iter_lines():
            if line.startswith(("id: ", "data: ")):
                key, _, value = line.partition(": ")
                event[key] = value
            elif not line and "data" in event:
                out.append((event["id"], json.loads(event["data"])))
                event = {}
            if time.monotonic() >= until:
                return


def stalled_client(port: int) -> socket.socket:
    """Opens the stream and never reads: its buffers and its queue fill up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /readings/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def test_two_stream_clients_get_the_same_events_and_a_stalled_one_holds_up_nobody(
    watched: tuple[Service, Recorder],
) -> None:
    service, recorder = watched
    states(recorder, 1)
    stalled = stalled_client(service.port)
    try:
        watched_before = httpx.get(service.base_url + "/readyz", timeout=30).json()["watch"]
        received: list[list[tuple[str, dict]]] = [[], []]
        clients = [threading.Thread(target=sse_events, args=(service.base_url, 6.0, received[i]))
                   for i in range(2)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(60)
        first, second = received
        # Each starts with the reading as it is when it connects (last_seen and frames_confirmed
        # as of then); every later event is a change, and both got the same ones, in order.
        start = max(int(first[0][0]), int(second[0][0]))
        common = [[event for event in events if int(event[0]) > start] for events in received]
        assert len(common[0]) >= 2, "the stream carried changes"
        assert common[0] == common[1]
        ids = [int(event_id) for event_id, _ in common[0]]
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # none skipped
        # MQTT and SSE say the same, change for change.
        recorder.wait_for(
            lambda messages: any(m.topic == STATE and m.json()["seq"] == ids[-1]
                                 for m in messages),
            10, f"state {ids[-1]} over MQTT",
        )
        mqtt_states = {m.json()["seq"]: m.json() for m in recorder.on(STATE)}
        assert [data for _, data in common[0]] == [mqtt_states[i] for i in ids]
        # The loop went on reading all along, and the stalled client is still connected.
        after = httpx.get(service.base_url + "/readyz", timeout=30).json()["watch"]
        assert after["frames_watched"] > watched_before["frames_watched"]
        # Only the stalled client is left once the server has seen the others go.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metrics = httpx.get(service.base_url + "/metrics", timeout=30).text
            if re.search(r"^digits_stream_clients 1\.0$", metrics, re.M):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("digits_stream_clients never came back to 1")
    finally:
        stalled.close()


# ---- faults: the broker goes away, refuses the password; the camera is down ----------------


@pytest.fixture(scope="module")
def still_video(
    tmp_path_factory: pytest.TempPathFactory, digits: dict[int, np.ndarray]
) -> Path:
    """A 7, held: the stable reading never changes."""
    return write_segments_video(tmp_path_factory.mktemp("still") / "seven.avi", [(digits[7], 20)])


def test_broker_outage_service_reconnects_and_publishes_everything_again(
    tmp_path: Path, digit_model_path: Path, still_video: Path
) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path)
    broker.start()
    service = Service(
        tmp_path, digit_model_path, "--camera", f"opencv:{still_video}",
        "--mqtt-url", broker.url(), "--mqtt-node-id", NODE,
    )
    try:
        service.wait_listening()
        first = Recorder(broker.port, ["digits/#"])
        first.wait_for(lambda _: first.on(STATE), 30, "the first state")
        first.close()
        broker.stop()
        # Ten seconds without a broker: the service answers throughout.
        outage_end = time.monotonic() + 10
        answers = []
        while time.monotonic() < outage_end:
            answers.append(httpx.get(service.base_url + "/predict", timeout=30).status_code)
            time.sleep(0.5)
        assert set(answers) == {200}, answers
        assert httpx.get(service.base_url + "/reading", timeout=30).json()["number"] == "7"
        ready = httpx.get(service.base_url + "/readyz", timeout=30)
        assert ready.status_code == 200  # a broker that is down is a detail, not unreadiness
        (mqtt,) = ready.json()["publishers"]
        assert not mqtt["connected"] and mqtt["reason"]
        broker.start()  # same port, and nothing retained: all of it must come from the service
        again = Recorder(broker.port, ["digits/#", "homeassistant/#"])
        try:
            def everything(messages: list) -> bool:
                topics = {m.topic for m in messages if m.retain}
                return {STATE, CAMERA, AVAILABILITY} <= topics and sum(
                    t.startswith("homeassistant/") for t in topics) == 3

            again.wait_for(everything, 60, "availability, discovery and state again")
            assert again.on(AVAILABILITY)[-1].payload == b"online"
            assert again.on(STATE)[-1].json()["number"] == "7"
            assert again.on(CAMERA)[-1].json() == {"ready": True, "reason": None}
        finally:
            again.close()
        (mqtt,) = httpx.get(service.base_url + "/readyz", timeout=30).json()["publishers"]
        assert mqtt["connected"] and mqtt["reconnects"] == 1
        metrics = httpx.get(service.base_url + "/metrics", timeout=30).text
        assert re.search(r"^digits_mqtt_reconnects_total 1\.0$", metrics, re.M)
        assert re.search(r"^digits_mqtt_connected 1\.0$", metrics, re.M)
        # One line per change of the connection, not one per retry.
        messages = [line["msg"] for line in service.log_entries("device.service.mqtt")]
        assert sum("lost the connection" in m for m in messages) == 1, messages
        assert sum("cannot connect" in m for m in messages) <= 1, messages
        assert sum(m.startswith("mqtt: connected again") for m in messages) == 1, messages
    finally:
        service.stop()
        broker.stop()


def test_wrong_password_is_one_log_line_and_a_readyz_detail(
    tmp_path: Path, digit_model_path: Path, still_video: Path
) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path, users={"digits": "right-password"})
    broker.start()
    service = Service(
        tmp_path, digit_model_path, "--camera", f"opencv:{still_video}", "--mqtt-node-id", NODE,
        env={"DIGITS_MQTT_URL": broker.url("digits", "wrong-password")},
    )
    try:
        service.wait_listening()
        # Let the service try several times (the broker logs each refusal).
        refusals = 0
        deadline = time.monotonic() + 30
        while refusals < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            refusals = broker.log_path.read_text().count("not authorised")
        assert refusals >= 3, broker.log_path.read_text()
        assert service.process.poll() is None  # no crash
        ready = httpx.get(service.base_url + "/readyz", timeout=30)
        assert ready.status_code == 200
        (mqtt,) = ready.json()["publishers"]
        assert (mqtt["connected"], mqtt["state"]) == (False, "refused")
        assert "check the user and password in DIGITS_MQTT_URL" in mqtt["reason"]
        assert httpx.get(service.base_url + "/predict", timeout=30).status_code == 200
        warnings = [line for line in service.log_entries("device.service.mqtt")
                    if line["level"] == "warning"]
        assert len(warnings) == 1, warnings
        assert "refused" in warnings[0]["msg"] and "Not authorized" in warnings[0]["msg"]
        assert "wrong-password" not in service.log() + ready.text
        assert "Traceback" not in service.log()
    finally:
        service.stop()
        broker.stop()


def test_camera_down_is_the_problem_sensor_and_reading_says_why(
    tmp_path: Path, digit_model_path: Path, broker: Mosquitto
) -> None:
    recorder = Recorder(broker.port, ["digits/down/#"])
    service = Service(
        tmp_path, digit_model_path, "--camera", f"opencv:{tmp_path / 'unplugged.avi'}",
        "--mqtt-url", broker.url(), "--mqtt-node-id", "down",
    )
    try:
        service.wait_listening()
        camera = recorder.wait_for(lambda _: recorder.on("digits/down/camera"), 30, "camera")
        health = camera[-1].json()
        assert health["ready"] is False and "does not exist" in health["reason"]
        assert camera[-1].retain
        answer = httpx.get(service.base_url + "/reading", timeout=30)
        assert answer.status_code == 503
        body = answer.json()
        assert body["error"] == "no_stable_reading" and "does not exist" in body["detail"]
        assert answer.headers["retry-after"]
        assert recorder.on("digits/down/availability")[-1].payload == b"online"
        assert not recorder.on("digits/down/state")  # nothing read, nothing claimed

        # An open stream does not hold up a stop, and a clean stop says "offline" itself.
        receiving, ended = threading.Event(), threading.Event()

        def listen() -> None:
            with httpx.stream("GET", service.base_url + "/readings/stream", timeout=60) as sse:
                for _ in sse.iter_lines():
                    receiving.set()
            ended.set()  # the server ended the response

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert receiving.wait(30), "the stream sent nothing"
    finally:
        assert service.stop() == 0
        recorder.wait_for(
            lambda _: recorder.on("digits/down/availability")[-1].payload == b"offline",
            30, "offline after the stop",
        )
        recorder.close()
    listener.join(30)
    assert ended.is_set()
    # uvicorn cancels what is still running when its graceful-shutdown time is up; the stream
    # must have ended by itself before that.
    assert "timeout graceful shutdown exceeded" not in service.log()


@contextlib.contextmanager
def first_verdict(url: str, within_s: float = 20, **settings: Any) -> Iterator[Any]:
    """A publisher for `url` (and `settings`), started; yields it once its state is no longer
    'connecting'."""
    import device.service.publishers.mqtt as mqtt_publisher
    from device.service.metrics import ServiceMetrics
    from device.service.settings import ServiceSettings

    settings = ServiceSettings(camera="opencv:0", mqtt_url=url, **settings)
    publisher = mqtt_publisher.create(settings, ServiceMetrics(), "model")
    publisher.start()
    try:
        deadline = time.monotonic() + within_s
        while publisher.status()["state"] == "connecting" and time.monotonic() < deadline:
            time.sleep(0.05)
        yield publisher
    finally:
        publisher.close()


def test_a_server_that_never_answers_is_named_not_left_connecting(monkeypatch) -> None:
    """A port that takes the connection and says nothing (another service, a TLS port spoken
    to in plain MQTT) once left the publisher 'connecting' with no reason and no log line."""
    import device.service.publishers.mqtt as mqtt_publisher

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    port = silent.getsockname()[1]
    monkeypatch.setattr(mqtt_publisher, "KEEPALIVE_S", 1)  # paho gives up after this long
    try:
        with first_verdict(f"mqtt://127.0.0.1:{port}") as publisher:
            status = publisher.status()
            assert status["state"] == "no_answer", status
            assert "never answered as an MQTT broker" in status["reason"]
            assert "mqtts://" in status["reason"]
    finally:
        silent.close()
    assert publisher.status()["state"] == "no_answer"  # a clean stop changes nothing


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts every connection and then neither reads nor writes; yields it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    held: list[socket.socket] = []

    def accept() -> None:
        # Accepted, not left in the backlog: a full backlog would stop taking connections,
        # which is a different fault (the TCP connect itself going unanswered).
        with contextlib.suppress(OSError):  # the server socket closed
            while True:
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.close()
        thread.join(10)
        for connection in held:
            connection.close()


def test_a_tls_server_that_never_answers_as_a_broker_is_not_asked_about_tls(
        monkeypatch, tmp_path: Path) -> None:
    """Over mqtts:// the reason asked "does the broker want TLS (mqtts://)?" of a server whose
    TLS handshake had just gone through."""
    import ssl

    import device.service.publishers.mqtt as mqtt_publisher

    tls = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    held: list[socket.socket] = []

    def accept() -> None:  # completes every handshake, then says nothing
        with contextlib.suppress(OSError):
            while True:
                held.append(context.wrap_socket(server.accept()[0], server_side=True))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setattr(mqtt_publisher, "KEEPALIVE_S", 1)  # paho gives up after this long
    port = server.getsockname()[1]
    try:
        with first_verdict(f"mqtts://localhost:{port}", mqtt_ca=tls.cert) as publisher:
            status = publisher.status()
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(10)
        for connection in held:
            connection.close()
    assert status["state"] == "no_answer", status
    assert "never answered as an MQTT broker" in status["reason"]
    assert "is it the broker's TLS listener (usually 8883)?" in status["reason"]
    assert "does the broker want TLS" not in status["reason"]


def test_mqtts_to_a_port_that_never_answers_the_tls_handshake_says_so(monkeypatch) -> None:
    """A port that takes the connection and stays silent was reported 'unreachable' ('down,
    unreachable or refusing connections'), which sent people looking for a broker that was
    down; and only paho's default timeout kept the handshake from waiting for good."""
    import device.service.publishers.mqtt as mqtt_publisher

    # The reason gives paho's timeout, so saying 1 s shows this limit is the one applied.
    monkeypatch.setattr(mqtt_publisher, "CONNECT_TIMEOUT_S", 1)
    with silent_listener() as port, first_verdict(f"mqtts://127.0.0.1:{port}") as publisher:
        status = publisher.status()
    assert status["state"] == "tls_no_answer", status
    assert (f"the server at mqtts://127.0.0.1:{port} took the connection but did not answer "
            "the TLS handshake within 1 s") in status["reason"]
    assert "probably not an MQTT-over-TLS port" in status["reason"]
    assert "or a firewall" in status["reason"]


def test_a_host_name_that_does_not_resolve_is_named_as_such() -> None:
    """Once reported as 'down, unreachable or refusing connections', which sent people to
    look at a broker when the typo was in DIGITS_MQTT_URL."""
    # RFC 2606: nothing under .invalid ever resolves.
    with first_verdict("mqtt://no-such-broker.invalid:1883") as publisher:
        status = publisher.status()
    assert status["state"] == "unresolved", status
    assert "cannot resolve the MQTT broker's host name 'no-such-broker.invalid'" in (
        status["reason"])
    assert "check the host in DIGITS_MQTT_URL" in status["reason"]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """mqtts:// with a self-signed certificate for 'localhost' (not for 127.0.0.1)."""
    require_mosquitto()
    folder = tmp_path_factory.mktemp("tls-broker")
    with Mosquitto(folder, tls=self_signed_certificate(folder)) as mosquitto:
        yield mosquitto


def test_a_certificate_that_is_not_trusted_says_why_and_how_to_trust_it(
    tls_broker: Mosquitto, tmp_path: Path
) -> None:
    with first_verdict(tls_broker.url()) as publisher:
        status = publisher.status()
    assert status["state"] == "tls_untrusted", status
    assert "presented a certificate that is not trusted (self-signed certificate)" in (
        status["reason"])
    assert "set DIGITS_MQTT_CA to the certificate (PEM) of the CA that signed it" in (
        status["reason"])
    assert "update-ca-certificates" in status["reason"]

    # What the reason says to do works: with its CA trusted, the same broker is reached by
    # the name on its certificate, and an address it was not issued for is named as such.
    assert tls_broker.tls is not None
    ca = tls_broker.tls.cert
    with first_verdict(tls_broker.url(), mqtt_ca=ca) as publisher:
        status = publisher.status()
    assert status["state"] == "tls_untrusted", status
    assert "IP address mismatch" in status["reason"]
    assert "put a host name the certificate was issued for in DIGITS_MQTT_URL" in (
        status["reason"])
    localhost = tls_broker.url().replace("127.0.0.1", "localhost")
    with first_verdict(localhost, mqtt_ca=ca) as publisher:
        assert publisher.status()["state"] == "connected", publisher.status()

    # A CA that did not sign the broker's certificate is named as the one to change.
    other = self_signed_certificate(tmp_path).cert
    with first_verdict(localhost, mqtt_ca=other) as publisher:
        status = publisher.status()
    assert status["state"] == "tls_untrusted", status
    assert f"DIGITS_MQTT_CA ({other}) is not the CA that signed it" in status["reason"]


def test_a_broker_with_a_self_signed_certificate_gets_the_reading_with_mqtt_ca(
    tls_broker: Mosquitto, tmp_path: Path, digit_model_path: Path, still_video: Path
) -> None:
    """A home broker's certificate is in no system CA store: --mqtt-ca names it, and the
    reading arrives over TLS."""
    assert tls_broker.tls is not None
    recorder = Recorder(tls_broker.port, ["digits/tls/#"], tls=tls_broker.tls)
    service = Service(
        tmp_path, digit_model_path, "--camera", f"opencv:{still_video}", "--mqtt-node-id", "tls",
        "--mqtt-url", tls_broker.url().replace("127.0.0.1", "localhost"),
        "--mqtt-ca", str(tls_broker.tls.cert),
    )
    try:
        service.wait_listening()
        state = recorder.wait_for(lambda _: recorder.on("digits/tls/state"), 30, "the state")
        assert state[-1].retain and state[-1].json()["number"] == "7"
        assert recorder.on("digits/tls/availability")[-1].payload == b"online"
        (mqtt,) = httpx.get(service.base_url + "/readyz", timeout=30).json()["publishers"]
        assert (mqtt["connected"], mqtt["state"]) == (True, "connected"), mqtt
        assert mqtt["broker"] == f"mqtts://localhost:{tls_broker.port}"
    finally:
        service.stop()
        recorder.close()


def test_mqtts_to_a_plain_mqtt_port_is_a_failed_tls_handshake(broker: Mosquitto) -> None:
    with first_verdict(broker.url().replace("mqtt://", "mqtts://")) as publisher:
        status = publisher.status()
    assert status["state"] == "tls_failed", status
    assert f"the TLS handshake with the MQTT broker at mqtts://127.0.0.1:{broker.port} failed" in (
        status["reason"])
    assert "the broker's TLS listener (mqtts://, usually 8883)" in status["reason"]
