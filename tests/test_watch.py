"""The stable reading, the event hub, the watch/MQTT settings and the discovery configs, in
process. The same behaviour against a real service and broker: tests/test_mqtt.py."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from mqtt_helpers import self_signed_certificate
from pydantic import ValidationError
from service_helpers import REPO, Service

from device.reader import DigitReading, Reading
from device.service.events import HEARTBEAT, ReadingEvents
from device.service.publishers.homeassistant import DeviceTopics, discovery_configs
from device.service.schemas import StableReading
from device.service.settings import MqttBroker, ServiceSettings
from device.service.stable import FrameReading, StableTracker

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def digit(value: int, confidence: float = 0.99, uncertain: bool = False) -> DigitReading:
    probabilities = [0.0] * 10
    probabilities[value] = confidence
    return DigitReading(value, confidence, probabilities, (10 * value, 5, 20, 30), uncertain)


def reading(*digits: DigitReading) -> Reading:
    """A device.reader.Reading as the reader builds it (no extraction needed here)."""
    main = digits[0] if digits else None
    return Reading(
        digits=list(digits),
        number="".join(str(d.digit) for d in digits) or None,
        digit=main.digit if main else None,
        confidence=main.confidence if main else None,
        probabilities=main.probabilities if main else None,
        reason=None if digits else "no ink found",
        timings_ms={},
        extraction=None,
        uncertain=any(d.uncertain for d in digits) if digits else None,
    )


def frames(*numbers: str | None, uncertain: str = "?") -> list[FrameReading]:
    """Frames reading each number ('' or None: nothing in view; `uncertain`: an uncertain 8)."""
    made = []
    for number in numbers:
        if number == uncertain:
            made.append(FrameReading.of(reading(digit(8, 0.5, uncertain=True))))
        else:
            made.append(FrameReading.of(reading(*(digit(int(c)) for c in number or ""))))
    return made


def changes(tracker: StableTracker, sequence: list[FrameReading]) -> list[str | None]:
    """The numbers the tracker announced, one frame a second from T0."""
    announced = []
    for i, frame in enumerate(sequence):
        changed = tracker.observe(frame, T0 + timedelta(seconds=i))
        if changed is not None:
            announced.append(changed.number)
    return announced


# ---- the stable reading -------------------------------------------------------------------


def test_a_number_counts_after_k_agreeing_frames_and_then_only_changes_count() -> None:
    two = StableTracker(3)
    assert changes(two, frames("42", "42")) == []
    assert two.current is None
    tracker = StableTracker(3)
    assert changes(tracker, frames("42", "42", "42", "42", "42")) == ["42"]
    current = tracker.current
    assert current is not None
    # It became stable at the third frame (t=2 s) and was confirmed by every later one.
    assert current.since == T0 + timedelta(seconds=2)
    assert current.last_seen == T0 + timedelta(seconds=4)
    assert current.frames_confirmed == 5
    assert current.seq == 1
    assert [d.digit for d in current.digits] == [4, 2]
    assert current.digits[0].box.model_dump() == {"x": 40, "y": 5, "w": 20, "h": 30}


def test_flicker_uncertain_frames_and_a_passing_hand_never_become_a_reading() -> None:
    tracker = StableTracker(3)
    sequence = frames(
        "7", "7", "7",  # 7 stable
        "1",  # a digit for one frame
        "7", "7",
        "3", "3",  # two frames only
        "?", "4", "4", "?", "4", "4",  # uncertain frames restart the count every time
        "7",
    )  # fmt: skip
    assert changes(tracker, sequence) == ["7"]
    assert tracker.current.number == "7"


def test_nothing_in_view_is_a_state_and_a_number_can_come_back() -> None:
    tracker = StableTracker(2)
    sequence = frames("5", "5", None, None, None, "5", "5", "", "")
    assert changes(tracker, sequence) == ["5", None, "5", None]
    nothing = tracker.current
    assert (nothing.number, nothing.digits, nothing.confidence) == (None, [], None)
    assert nothing.seq == 4


def test_one_frame_is_enough_when_k_is_one() -> None:
    assert changes(StableTracker(1), frames("1", "2", "2", None)) == ["1", "2", None]
    with pytest.raises(ValueError, match="at least 1"):
        StableTracker(0)


def test_interrupt_restarts_the_count() -> None:
    tracker = StableTracker(3)
    changes(tracker, frames("9", "9"))
    tracker.interrupt()  # e.g. the camera failed a read
    assert changes(tracker, frames("9", "9")) == []
    assert changes(tracker, frames("9")) == ["9"]


def test_a_frame_is_uncertain_when_the_reader_says_so_or_below_the_floor() -> None:
    sure = reading(digit(4, 0.97), digit(2, 0.95))
    assert FrameReading.of(sure).certain
    assert FrameReading.of(sure).confidence == 0.95  # the weakest digit speaks for the number
    assert not FrameReading.of(sure, min_confidence=0.96).certain
    assert not FrameReading.of(reading(digit(4), digit(2, 0.6, uncertain=True))).certain
    nothing = FrameReading.of(reading(), min_confidence=0.99)
    assert nothing.certain and nothing.number is None and nothing.confidence is None


# ---- the event hub ------------------------------------------------------------------------


def stable(seq: int, number: str | None = "1") -> StableReading:
    return StableReading(number=number, digits=[], confidence=None, since=T0, last_seen=T0,
                         frames_confirmed=3, seq=seq)


def event_ids(chunks: list[bytes]) -> list[int]:
    return [int(chunk.split(b"\n", 1)[0].removeprefix(b"id: ")) for chunk in chunks
            if chunk.startswith(b"id: ")]


def test_every_client_gets_every_event_and_a_stalled_one_only_loses_its_oldest() -> None:
    """Two clients' event streams: one reads along, one stops reading (as a client whose
    socket is full stops pulling from its stream); publishing never waits for either."""

    async def scenario() -> None:
        dropped: list[int] = []
        events = ReadingEvents(queue_size=4, on_drop=lambda: dropped.append(1))
        reader = events.stream(None, heartbeat_s=60)
        stalled = events.stream(None, heartbeat_s=60)
        for stream in (reader, stalled):
            assert (await anext(stream)).startswith(b"retry: ")  # subscribed from here on
        assert events.clients == 2
        received = []
        for seq in range(1, 101):
            events.publish(stable(seq))  # synchronous: it cannot wait for anyone
            received.append(await anext(reader))
        assert event_ids(received) == list(range(1, 101))
        # The stalled client reads again: it gets the newest events its queue held.
        assert event_ids([await anext(stalled) for _ in range(4)]) == [97, 98, 99, 100]
        assert len(dropped) == events.dropped == 96
        await reader.aclose()
        await stalled.aclose()
        assert events.clients == 0

    asyncio.run(scenario())


def test_stream_sends_the_current_reading_then_changes_heartbeats_and_ends_on_close() -> None:
    async def scenario() -> list[bytes]:
        events = ReadingEvents()
        stream = events.stream(stable(1), heartbeat_s=0.01)
        chunks = [await anext(stream), await anext(stream)]
        chunks.append(await anext(stream))  # nothing happened: a heartbeat comment
        events.publish(stable(2, None))
        while (chunk := await anext(stream)) == HEARTBEAT:
            pass
        chunks.append(chunk)
        events.close()
        chunks += [chunk async for chunk in stream]
        return chunks

    retry, first, heartbeat, change, *rest = asyncio.run(scenario())
    assert retry.startswith(b"retry: ")
    assert heartbeat == HEARTBEAT
    for chunk, seq, number in ((first, 1, "1"), (change, 2, None)):
        lines = chunk.decode().splitlines()
        assert lines[:2] == [f"id: {seq}", "event: reading"]
        assert json.loads(lines[2].removeprefix("data: "))["number"] == number
        assert chunk.endswith(b"\n\n")
    assert all(chunk == HEARTBEAT for chunk in rest)  # and then the stream ended


# ---- settings -----------------------------------------------------------------------------


def test_mqtt_url_is_taken_apart_and_never_shows_the_password() -> None:
    broker = MqttBroker("mqtt://digits:p%40ss%3Aword@broker.local")
    assert (broker.host, broker.port, broker.tls) == ("broker.local", 1883, False)
    assert (broker.username, broker.password) == ("digits", "p@ss:word")
    assert str(broker) == "mqtt://digits@broker.local:1883"
    secure = MqttBroker("mqtts://10.0.0.2:18883")
    assert (secure.port, secure.tls, secure.username) == (18883, True, None)
    settings = ServiceSettings(camera="opencv:0", mqtt_url="mqtt://u:hunter2@h:1")
    assert settings.watching and not settings.watch
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.mqtt_broker)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mqtt_url": "http://broker:1883"}, "expected mqtt://"),
        ({"mqtt_url": "mqtt://u:secret@:1883"}, "names no broker host"),
        ({"mqtt_url": "mqtt://u:secret@h:99999"}, "not an MQTT URL"),
        ({"mqtt_url": "mqtt://h:0"}, "port 0 is no broker's port"),
        ({"mqtt_url": "mqtt://h/digits"}, "DIGITS_MQTT_PREFIX"),
        ({"mqtt_prefix": "digits/#"}, "wildcards"),
        ({"mqtt_prefix": "/digits"}, "topic levels"),
        ({"mqtt_node_id": "pi.local"}, "letters, digits"),
        ({"watch_fps": 0}, "greater than 0"),
        ({"watch_stable_frames": 0}, "greater than or equal to 1"),
        ({"watch_min_confidence": 1.5}, "less than or equal to 1"),
        ({"camera": "none", "watch": True}, "camera is 'none'"),
        ({"camera": "none", "mqtt_url": "mqtt://h"}, "DIGITS_MQTT_URL reads the camera"),
    ],
)
def test_bad_watch_and_mqtt_settings_are_refused_with_the_reason(
    fields: dict, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(**{"camera": "opencv:0", **fields})
    text = "; ".join(error["msg"] for error in refused.value.errors())
    assert message in text
    assert "secret" not in text


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--camera", "none", "--watch"], "camera is 'none'"),
        (["--camera", "opencv:0", "--mqtt-url", "mqtt://digits:s3cret@:1883"], "no broker host"),
        (["--camera", "opencv:0", "--watch-fps", "fast"], "--watch-fps: invalid float value"),
    ],
)
def test_serve_refuses_a_watch_that_cannot_work_in_one_line(flags: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "device", "serve", *flags], cwd=REPO, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert says in lines[-1]
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
    if "invalid float" not in says:  # argparse prints its usage first; ours is one line
        assert len(lines) == 1, lines


def test_a_broker_ca_file_that_cannot_be_loaded_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    """paho loads DIGITS_MQTT_CA only when the publisher is built; a bad file must stop the
    start with what is wrong, not a traceback there (or, before DIGITS_MQTT_CA existed, be
    ignored)."""
    certificate = self_signed_certificate(tmp_path)
    der = tmp_path / "ca.der"
    subprocess.run(["openssl", "x509", "-in", str(certificate.cert), "-outform", "der",
                    "-out", str(der)], check=True, capture_output=True)
    mqtts = "mqtts://u:secret@localhost:8883"
    for ca, message in [
        (tmp_path / "absent.pem", "absent.pem does not exist"),
        (tmp_path, "is not a file"),
        (der, "holds no PEM certificate that loads"),
        (certificate.key, "holds no PEM certificate that loads"),  # a key, not a certificate
    ]:
        with pytest.raises(ValidationError) as refused:
            ServiceSettings(camera="opencv:0", mqtt_url=mqtts, mqtt_ca=ca)
        (error,) = refused.value.errors()
        assert error["loc"] == ("mqtt_ca",) and message in error["msg"], error
        assert "secret" not in str(refused.value)
    assert "openssl x509 -inform der" in error["msg"]  # how to make a PEM of a DER file
    # A CA with a plain connection would verify nothing: refused, not silently unused.
    with pytest.raises(ValidationError, match="DIGITS_MQTT_URL is plain mqtt://"):
        ServiceSettings(camera="opencv:0", mqtt_url="mqtt://h:1883", mqtt_ca=certificate.cert)
    settings = ServiceSettings(camera="opencv:0", mqtt_url=mqtts, mqtt_ca=certificate.cert)
    assert settings.mqtt_ca == certificate.cert

    # From the command line: one line and exit status 2, as for every other bad setting.
    for flags, says in [
        (["--mqtt-url", mqtts, "--mqtt-ca", str(der)], "holds no PEM certificate that loads"),
        (["--mqtt-url", "mqtt://h", "--mqtt-ca", str(certificate.cert)], "plain mqtt://"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "device", "serve", "--camera", "opencv:0", *flags],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], done.stderr
        assert "Traceback" not in done.stderr and "secret" not in done.stderr


def test_node_id_defaults_to_a_usable_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "kitchen-pi.fritz.box")
    assert ServiceSettings().mqtt_node_id == "kitchen-pi"
    monkeypatch.setattr("socket.gethostname", lambda: "pi zero (2)")
    assert ServiceSettings().mqtt_node_id == "pi_zero_2_"


# ---- Home Assistant discovery -------------------------------------------------------------

# Home Assistant's own pattern for a discovery topic (homeassistant/components/mqtt/discovery.py),
# below the discovery prefix.
HA_DISCOVERY_TOPIC = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)
# The options Home Assistant's MQTT sensor and binary sensor accept that we use (its schemas
# reject a config with an unknown option).
HA_OPTIONS = {
    "sensor": {"availability_topic", "payload_available", "payload_not_available", "device",
               "origin", "qos", "name", "icon", "state_topic", "value_template",
               "json_attributes_topic", "unique_id", "unit_of_measurement", "state_class",
               "device_class", "entity_category"},
    "binary_sensor": {"availability_topic", "payload_available", "payload_not_available",
                      "device", "origin", "qos", "name", "icon", "state_topic", "value_template",
                      "json_attributes_topic", "unique_id", "device_class", "entity_category",
                      "payload_on", "payload_off"},
}  # fmt: skip


def render(template: str, payload: str) -> str:
    """A value template rendered the way Home Assistant does: Jinja2, value_json = the JSON."""
    environment = ImmutableSandboxedEnvironment()
    return environment.from_string(template).render(value=payload, value_json=json.loads(payload))


def check_discovery(
    configs: dict[str, dict], prefix: str, retained: dict[str, str]
) -> dict[str, dict]:
    """Asserts what Home Assistant needs of each config; returns them by object id.

    `retained`: topic → payload of what the device publishes (state, camera, availability).
    """
    by_object: dict[str, dict] = {}
    devices = []
    for topic, config in configs.items():
        assert topic.startswith(f"{prefix}/")
        match = HA_DISCOVERY_TOPIC.fullmatch(topic.removeprefix(f"{prefix}/"))
        assert match, f"{topic} is not a discovery topic Home Assistant accepts"
        component = match["component"]
        assert set(config) <= HA_OPTIONS[component], set(config) - HA_OPTIONS[component]
        for key in ("state_topic", "availability_topic", "json_attributes_topic"):
            if key in config:
                assert config[key] in retained, f"{key} {config[key]} gets no retained message"
                assert not set("+#") & set(config[key])
        availability = retained[config["availability_topic"]]
        assert availability == config["payload_available"]
        assert config["payload_not_available"] == "offline"
        device = config["device"]
        assert isinstance(device["identifiers"], list) and device["identifiers"]
        assert {"name", "model", "manufacturer", "sw_version"} <= set(device)
        devices.append(device)
        assert config["origin"]["name"]
        by_object[match["object_id"]] = {"component": component, **config}
    assert all(device == devices[0] for device in devices), "one device block for all"
    unique_ids = [config["unique_id"] for config in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    return by_object


def test_discovery_configs_render_the_published_payloads() -> None:
    topics = DeviceTopics.under("digits", "kitchen")
    configs = discovery_configs(topics, "homeassistant", "digitnet_int8")
    number_read = StableReading(
        number="042", digits=[], confidence=0.9876, since=T0, last_seen=T0, frames_confirmed=3,
        seq=1,
    ).model_dump_json()
    retained = {topics.state: number_read, topics.camera: '{"ready": false, "reason": "gone"}',
                topics.availability: "online"}
    entities = check_discovery(configs, "homeassistant", retained)
    assert set(entities) == {"number", "confidence", "camera"}
    number, confidence, camera = entities["number"], entities["confidence"], entities["camera"]
    assert number["component"] == confidence["component"] == "sensor"
    assert render(number["value_template"], number_read) == "042"  # leading zeros kept
    assert render(confidence["value_template"], number_read) == "98.8"
    nothing = stable(2, None).model_dump_json()
    # "None" is what Home Assistant turns into the state "unknown".
    assert render(number["value_template"], nothing) == "None"
    assert render(confidence["value_template"], nothing) == "None"
    assert (camera["component"], camera["device_class"]) == ("binary_sensor", "problem")
    down = render(camera["value_template"], retained[topics.camera])
    up = render(camera["value_template"], '{"ready": true, "reason": null}')
    assert (down, up) == (camera["payload_on"], camera["payload_off"])


# ---- the endpoints with the watch off -----------------------------------------------------


def test_reading_and_stream_say_how_to_switch_the_watch_on(served: Service) -> None:
    for path in ("/reading", "/readings/stream"):
        answer = httpx.get(served.base_url + path, timeout=30)
        assert answer.status_code == 503, path
        body = answer.json()
        assert body["error"] == "watch_off"
        assert "DIGITS_WATCH=true" in body["expected"]
    ready = httpx.get(served.base_url + "/readyz", timeout=30).json()
    assert ready["watch"] is None and ready["publishers"] == []
