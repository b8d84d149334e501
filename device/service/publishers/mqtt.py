"""MQTT: the stable reading as one retained JSON message, availability with a last will, and
Home Assistant discovery. paho-mqtt 2.x does the protocol on its own network thread.

Topics (PREFIX = DIGITS_MQTT_PREFIX, NODE = DIGITS_MQTT_NODE_ID):
  PREFIX/NODE/state         the stable reading (schemas.StableReading), retained, on change
  PREFIX/NODE/camera        {"ready": bool, "reason": str|null}, retained, on change
  PREFIX/NODE/availability  "online" once connected; the broker's last will says "offline"
  <discovery>/.../config    Home Assistant discovery, retained; again when HA says "online"

Nothing here can block the event loop: connecting (DNS included) happens on paho's thread,
where a connect or TLS handshake that gets no answer gives up after CONNECT_TIMEOUT_S; a publish
while disconnected is skipped, and on every (re)connect the latest reading, camera health,
availability and discovery are sent again, so only the latest values are ever held.
Each change of the connection state is logged once (not once per retry); the state is in
/readyz, /metrics and on the preview page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from device.service.metrics import ServiceMetrics
from device.service.publishers.base import Publisher
from device.service.publishers.homeassistant import (
    OFFLINE,
    ONLINE,
    DeviceTopics,
    discovery_configs,
)
from device.service.schemas import CameraHealth, StableReading
from device.service.settings import MqttBroker, ServiceSettings

log = logging.getLogger("device.service.mqtt")

QOS = 1
KEEPALIVE_S = 30
# Reconnect backoff: 1 s after a loss, doubling to this while the broker stays away.
RECONNECT_MAX_S = 30
# QoS 1 messages wait in paho's memory until the broker acknowledges them; a broker that
# accepts the connection but never acknowledges must not make that grow without end.
MAX_QUEUED = 64
GOODBYE_S = 2.0  # how long close() waits for "offline" to reach the broker
# How long a TCP connect or a TLS handshake may go unanswered before the attempt fails and is
# retried. Set here, not left to paho's default, because the handshake runs on paho's thread
# with nothing else to end it: without a limit a server that takes the connection and never
# answers would hold the publisher (and close(), which waits for that thread) for good.
# paho's 5 s: ample for a Pi's handshake over Wi-Fi, and a stop waits at most this long.
CONNECT_TIMEOUT_S = 5.0


def configured(settings: ServiceSettings) -> bool:
    return settings.mqtt_url is not None


def create(settings: ServiceSettings, metrics: ServiceMetrics, model_name: str) -> MqttPublisher:
    broker = settings.mqtt_broker
    assert broker is not None  # configured() said so
    return MqttPublisher(
        broker,
        DeviceTopics.under(settings.mqtt_prefix, settings.mqtt_node_id),
        metrics,
        discovery_prefix=settings.mqtt_discovery_prefix if settings.mqtt_discovery else None,
        model_name=model_name,
        ca=settings.mqtt_ca,
    )


# OpenSSL's verify codes for a certificate that is valid but issued for another name/address.
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def _in_tls_handshake(error: BaseException) -> bool:
    """Whether `error` was raised by the TLS handshake (ssl's do_handshake), not before it.

    A timeout looks the same from a TCP connect no one answers (a host that is down or
    firewalled) and from a handshake no one answers; only where it was raised tells them apart.
    """
    return any(frame.f_code.co_name == "do_handshake"
               for frame, _ in traceback.walk_tb(error.__traceback__))


def connect_failure(
    broker: MqttBroker, error: BaseException | None, *, ca: Path | None = None,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> tuple[str, str]:
    """(state, reason) for a connection attempt that failed before MQTT was spoken.

    `ca` is DIGITS_MQTT_CA, the one CA trusted instead of the system's, if set; `timeout_s`
    is how long the attempt waited for an answer.

    Each cause has its own fix, so each is named: a host name that does not resolve, a TLS
    certificate that is not trusted, a TLS handshake that got no answer or failed, else down or
    unreachable.
    """
    retry = f"retrying every 1 to {RECONNECT_MAX_S} s"
    if isinstance(error, socket.gaierror):
        return "unresolved", (
            f"cannot resolve the MQTT broker's host name {broker.host!r} ({error.strerror}): "
            f"check the host in DIGITS_MQTT_URL (and the network's DNS); {retry}"
        )
    if broker.tls and isinstance(error, ssl.SSLCertVerificationError):
        why = getattr(error, "verify_message", None) or str(error)
        if getattr(error, "verify_code", None) in _NAME_MISMATCH:
            fix = "put a host name the certificate was issued for in DIGITS_MQTT_URL"
        elif ca is not None:
            fix = (f"DIGITS_MQTT_CA ({ca}) is not the CA that signed it: name that CA's "
                   "certificate (for a self-signed broker, the broker's certificate itself)")
        else:
            fix = ("set DIGITS_MQTT_CA to the certificate (PEM) of the CA that signed it (for a "
                   "self-signed broker, the broker's certificate itself), or add that CA to "
                   "the system's CA certificates (update-ca-certificates)")
        return "tls_untrusted", (
            f"the MQTT broker at {broker} presented a certificate that is not trusted "
            f"({why}): {fix}; {retry}"
        )
    if broker.tls and isinstance(error, TimeoutError) and _in_tls_handshake(error):
        # The TCP connection was made, so the broker is not down: whatever listens there does
        # not speak TLS first (a service waiting for its client to talk), or something in
        # between holds the connection without passing anything on.
        return "tls_no_answer", (
            f"the server at {broker} took the connection but did not answer the TLS handshake "
            f"within {timeout_s:g} s: probably not an MQTT-over-TLS port (is port {broker.port} "
            f"the broker's TLS listener, usually 8883?), or a firewall in between; {retry}"
        )
    if broker.tls and isinstance(error, (ssl.SSLError, ConnectionResetError)):
        # A reset here came after the TCP connection was made (a closed port refuses it), so
        # the server dropped the handshake: a plain MQTT listener (mosquitto) does that.
        why = getattr(error, "reason", None) or error.strerror or str(error)
        return "tls_failed", (
            f"the TLS handshake with the MQTT broker at {broker} failed ({why}): is port "
            f"{broker.port} the broker's TLS listener (mqtts://, usually 8883) and not its "
            f"plain one (mqtt://, usually 1883)? {retry}"
        )
    return "unreachable", (
        f"cannot connect to the MQTT broker at {broker} (down, unreachable or refusing "
        f"connections); {retry}"
    )


class MqttPublisher(Publisher):
    name = "mqtt"

    def __init__(
        self,
        broker: MqttBroker,
        topics: DeviceTopics,
        metrics: ServiceMetrics,
        *,
        discovery_prefix: str | None,
        model_name: str,
        ca: Path | None = None,
    ) -> None:
        self.broker = broker
        self.ca = ca
        self.topics = topics
        self.metrics = metrics
        self.discovery_prefix = discovery_prefix
        self._discovery = (
            discovery_configs(topics, discovery_prefix, model_name) if discovery_prefix else {}
        )
        # Held under the lock with every publish, so a reconnect's re-send and a new reading
        # from the event loop can never reach the broker in the wrong order.
        self._lock = threading.Lock()
        self._reading: bytes | None = None
        self._camera: bytes | None = None
        self._connected = False
        self._ever_connected = False
        self._state = "connecting"
        self._reason: str | None = None
        self._state_since = time.time()
        self._closing = False
        self.messages_published = 0
        self.reconnects = 0
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pi-digits-{self.topics.node_id}",
            protocol=paho.MQTTv311,
        )
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            # DIGITS_MQTT_CA instead of the system's CA certificates: a home broker's private
            # CA or self-signed certificate is in no system store. The settings checked that
            # the file loads.
            client.tls_set(ca_certs=None if self.ca is None else str(self.ca))
        client.connect_timeout = CONNECT_TIMEOUT_S
        client.will_set(self.topics.availability, OFFLINE, qos=QOS, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # ---- what the watch loop calls (event loop thread) ---------------------------------

    def start(self) -> None:
        log.info("mqtt: connecting to %s as node %s", self.broker, self.topics.node_id)
        # connect_async only records the address: the connection (DNS included) and every
        # retry happen on paho's thread, so an absent broker never delays start-up.
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()

    def publish_reading(self, reading: StableReading) -> None:
        with self._lock:
            self._reading = reading.model_dump_json().encode()
            if self._connected:
                self._send(self.topics.state, self._reading, "state")

    def publish_camera(self, health: CameraHealth) -> None:
        with self._lock:
            self._camera = health.model_dump_json().encode()
            if self._connected:
                self._send(self.topics.camera, self._camera, "camera")

    def status(self) -> dict[str, Any]:
        return {
            "publisher": self.name,
            "broker": str(self.broker),
            "node_id": self.topics.node_id,
            "state_topic": self.topics.state,
            "connected": self._connected,
            "state": self._state,
            "reason": self._reason,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._state_since)),
            "messages_published": self.messages_published,
            "reconnects": self.reconnects,
            "discovery": self.discovery_prefix is not None,
        }

    def close(self) -> None:
        self._closing = True  # the disconnect that follows is ours, not news
        with self._lock:
            if self._connected:
                # The will is only sent for a connection that breaks; a clean stop says it.
                goodbye = self._send(self.topics.availability, OFFLINE.encode(), "availability")
                self._connected = False
            else:
                goodbye = None
        if goodbye is not None:
            # RuntimeError/ValueError: the connection went in the meantime.
            with contextlib.suppress(RuntimeError, ValueError):
                goodbye.wait_for_publish(GOODBYE_S)
        self._client.disconnect()
        self._client.loop_stop()
        self.metrics.mqtt_connected.set(0)

    # ---- paho's callbacks (its network thread) -----------------------------------------

    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            # Wrong credentials or a refused client: paho retries with backoff; logged once.
            hint = ""
            if reason.value in (4, 5, 134, 135):  # bad user name or password / not authorized
                hint = "; check the user and password in DIGITS_MQTT_URL"
            self._set_state("refused", f"the broker at {self.broker} refused: {reason}{hint}")
            return
        if self.discovery_prefix is not None:
            # Home Assistant says "online" here when it (re)starts: discovery is then re-sent.
            client.subscribe(f"{self.discovery_prefix}/status", qos=QOS)
        with self._lock:
            self._connected = True
            self._send(self.topics.availability, ONLINE.encode(), "availability")
            self._send_everything()
        if self._ever_connected:
            self.reconnects += 1
            self.metrics.mqtt_reconnects.inc()
        self._ever_connected = True
        self.metrics.mqtt_connected.set(1)
        self._set_state("connected", None)

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        # paho calls this from inside its `except OSError:` around the attempt without passing
        # the error, so the error being handled is the only way to tell the causes apart.
        # paho's own timeout, so that the reason says the time that was really waited.
        self._set_state(*connect_failure(
            self.broker, sys.exc_info()[1], ca=self.ca, timeout_s=self._client.connect_timeout,
        ))

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
        self.metrics.mqtt_connected.set(0)
        # A refused attempt also ends in a disconnect (said by _on_connect); one that got no
        # answer at all, from a server that took the connection and never answered (another
        # service on the port, a TLS port spoken to in plain MQTT), ends here after KEEPALIVE_S.
        if self._closing:
            return
        if not was_connected:
            if self._state != "refused":
                # Over TLS the handshake went through, so TLS is not what is missing.
                question = ("is it the broker's TLS listener (usually 8883)?" if self.broker.tls
                            else "is it the broker's port, and does the broker want TLS "
                                 "(mqtts://)?")
                self._set_state(
                    "no_answer",
                    f"the server at {self.broker} took the connection but never answered as an "
                    f"MQTT broker ({reason}): {question} retrying every 1 to "
                    f"{RECONNECT_MAX_S} s",
                )
        else:
            # paho's word for "the broker closed the socket" is "Unspecified error".
            why = "" if getattr(reason, "value", 128) == 128 else f" ({reason})"
            self._set_state(
                "disconnected",
                f"lost the connection to the MQTT broker at {self.broker}{why}; "
                f"reconnecting every 1 to {RECONNECT_MAX_S} s",
            )

    def _on_message(self, _client: paho.Client, _userdata: Any, message: Any) -> None:
        if message.payload.strip().lower() == ONLINE.encode():
            log.info("mqtt: Home Assistant came online; sending discovery and state again")
            with self._lock:
                if self._connected:
                    self._send_everything()

    # ---- sending (always under the lock) --------------------------------------------------

    def _send_everything(self) -> None:
        for topic, config in self._discovery.items():
            self._send(topic, json.dumps(config).encode(), "discovery")
        if self._camera is not None:
            self._send(self.topics.camera, self._camera, "camera")
        if self._reading is not None:
            self._send(self.topics.state, self._reading, "state")

    def _send(self, topic: str, payload: bytes, kind: str) -> paho.MQTTMessageInfo | None:
        info = self._client.publish(topic, payload, qos=QOS, retain=True)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            # Not connected after all, or the queue is full: the next (re)connect sends the
            # latest values again, so nothing that matters is lost.
            log.debug("mqtt: %s not sent (%s)", topic, paho.error_string(info.rc))
            return None
        self.messages_published += 1
        self.metrics.mqtt_published.labels(kind=kind).inc()
        return info

    def _set_state(self, state: str, reason: str | None) -> None:
        if (state, reason) == (self._state, self._reason):
            return  # the same failure again on the next retry: already logged
        self._state, self._reason, self._state_since = state, reason, time.time()
        if state == "connected":
            again = " again" if self.reconnects else ""
            log.info("mqtt: connected%s to %s; publishing to %s", again, self.broker,
                     self.topics.state)
        else:
            log.warning("mqtt: %s", reason)
