"""Every knob of the HTTP service in one place.

Values come, highest priority first, from command-line flags, `DIGITS_*` environment variables,
an env file (`--env-file` or `$DIGITS_ENV_FILE`, the file systemd's `EnvironmentFile=` points at)
and the defaults below. The variable names are part of the deployment contract: keep them stable.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from device.camera_specs import SPEC_FORMS, parse_camera_spec
from device.runtime import MAX_THREADS

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "digitnet_int8.tflite"
ENV_FILE_VARIABLE = "DIGITS_ENV_FILE"

Roi = tuple[float, float, float, float]

MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# Home Assistant accepts only these characters in a discovery topic's node id (and they are safe
# in any MQTT topic level).
NODE_ID = re.compile(r"[A-Za-z0-9_-]+")


def default_node_id() -> str:
    """The hostname, reduced to what a topic level and Home Assistant's node id accept."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", socket.gethostname().split(".")[0]) or "digits"


class MqttBroker:
    """DIGITS_MQTT_URL taken apart: mqtt://[user[:password]@]host[:port] or mqtts://...

    Its string form leaves the password out, so it can be logged and shown in /readyz.
    """

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:  # a port that is not a number, or out of range
            raise ValueError(f"not an MQTT URL ({exc})") from None
        if parts.scheme not in MQTT_PORTS:
            raise ValueError(
                "expected mqtt://[user:password@]host[:port] or mqtts://... (TLS, trusting the "
                "system's CA certificates or DIGITS_MQTT_CA)"
            )
        if not parts.hostname:
            raise ValueError("the MQTT URL names no broker host, e.g. mqtt://192.168.1.10:1883")
        if port == 0:  # `port or` below would take it for "none given" and use 1883
            raise ValueError("port 0 is no broker's port: leave it out for the default (1883, "
                             "or 8883 with mqtts://) or name the broker's")
        if parts.path not in {"", "/"} or parts.query or parts.fragment:
            raise ValueError("the MQTT URL takes no path or query: set DIGITS_MQTT_PREFIX instead")
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname
        self.port = port or MQTT_PORTS[parts.scheme]
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password is not None else None

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def check_ca_file(path: Path) -> None:
    """Refuse a DIGITS_MQTT_CA that paho could not load, saying why, before anything starts.

    paho loads it only when the publisher is built, where a bad file would be a traceback.
    """
    where = "e.g. /etc/pi-digits/broker-ca.pem, readable by the service's user"
    if not path.exists():
        raise ValueError(f"{path} does not exist: name the broker's CA certificate file ({where})")
    # A directory, a device or a FIFO: opening a FIFO would block the start, /dev/zero never ends.
    if not path.is_file():
        raise ValueError(f"{path} is not a file: name the broker's CA certificate file ({where})")
    try:  # OpenSSL would say only "No such file" or "PEM lib" for a file it may not read
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(
            f"cannot read {path} ({exc.strerror}): make it readable by the service's user"
        ) from None
    try:
        # The very call paho's tls_set(ca_certs=...) makes, so what passes here loads there.
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise ValueError(
            f"{path} holds no PEM certificate that loads ({why}): name the "
            "CA's certificate in PEM form (-----BEGIN CERTIFICATE-----; for a self-signed broker "
            "certificate, the certificate itself); convert a DER one with "
            "openssl x509 -inform der -in ca.der -out ca.pem"
        ) from None


def _topic_levels(value: str, what: str) -> str:
    value = value.strip()
    if not value or value.startswith("/") or value.endswith("/") or "//" in value:
        raise ValueError(f"{what} must be topic levels like 'digits' or 'home/digits'")
    if any(char in value for char in "+#\0"):
        raise ValueError(f"{what} may not contain the MQTT wildcards + or #")
    return value


class ServiceSettings(BaseSettings):
    """Configuration of `python -m device serve`; each field is also `DIGITS_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="DIGITS_", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 for the network)")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    model: Path = Field(DEFAULT_MODEL, description="the .tflite model; its .json sidecar beside it")
    camera: str = Field("auto", description=SPEC_FORMS)
    roi: Annotated[Roi | None, NoDecode] = Field(
        None,
        description="region of interest x,y,w,h as fractions of the frame, e.g. 0.25,0.25,0.5,0.5",
    )
    # One: the service's parallelism is its requests (the event loop, CPU_WORKERS worker
    # threads); a second interpreter thread speeds one ~0.1 ms inference a little and spins a
    # core the other requests need (+23% CPU per 28×28 upload under load, docs/BENCHMARKS.md).
    threads: int = Field(1, ge=1, le=MAX_THREADS, description="interpreter threads")
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1, description="largest accepted upload")
    # The cap keeps the value one OpenCV can parse: run_serve hands it over as
    # OPENCV_IO_MAX_IMAGE_PIXELS, and one past 2**64 aborted the process at `import cv2` with
    # nothing in the log. A BGR frame of 2**32 pixels is 12 GiB, more than any Pi has.
    max_image_pixels: int = Field(
        40_000_000, ge=1, le=2**32,
        description="largest accepted width×height (decompression-bomb guard)",
    )
    token: SecretStr | None = Field(None, description="bearer token required on all but /healthz")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    preview: bool = Field(True, description="serve the live preview page at /")
    preview_fps: float = Field(
        5.0, gt=0, le=30, description="frame-rate cap of the preview stream /stream.mjpg"
    )
    # Upper bounds: the start-up waits up to capture_timeout_s for the camera's first open,
    # and the unit gives a start 120 s (TimeoutStartSec); an infinite or huge value crashed
    # the start with a traceback (a wait past time_t), and an infinite retry never reopened.
    capture_timeout_s: float = Field(
        5.0, gt=0, le=60, description="a camera read slower than this is hung"
    )
    camera_retry_s: float = Field(
        2.0, gt=0, le=600,
        description="first pause before reopening a failed camera; backs off to 5x that",
    )
    watch: bool = Field(
        False,
        description="read the camera continuously and keep a stable reading (GET /reading, "
        "/readings/stream); on by itself when DIGITS_MQTT_URL is set",
    )
    watch_fps: float = Field(2.0, gt=0, le=30, description="frames per second the watch reads")
    watch_stable_frames: int = Field(
        3, ge=1, le=100, description="consecutive frames that must agree before a reading counts"
    )
    watch_min_confidence: float = Field(
        0.0,
        ge=0,
        le=1,
        description="a frame whose weakest digit is below this is uncertain, on top of the "
        "model's calibrated `uncertain` flag (0: the flag alone decides)",
    )
    # At least a second: at a microsecond, three stream clients that never read took 4.3 s of
    # CPU in 5 s.
    stream_heartbeat_s: float = Field(
        15.0, ge=1, le=300, description="a comment line on /readings/stream this often"
    )
    mqtt_url: SecretStr | None = Field(
        None, description="publish to this broker: mqtt://user:password@host:1883 or mqtts://..."
    )
    mqtt_ca: Path | None = Field(
        None,
        description="with mqtts://, trust the broker certificates this PEM CA file signed "
        "(instead of the system's CA certificates)",
    )
    mqtt_prefix: str = Field("digits", description="topics are PREFIX/NODE_ID/state, ...")
    mqtt_node_id: str = Field(
        default_factory=default_node_id, description="this device in topics (default: hostname)"
    )
    mqtt_discovery: bool = Field(True, description="announce the sensors to Home Assistant")
    mqtt_discovery_prefix: str = Field(
        "homeassistant", description="Home Assistant's discovery prefix"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("camera")
    @classmethod
    def _check_camera(cls, value: str) -> str:
        # python:MODULE:FACTORY is the developers' hook for a camera of their own (tests).
        parse_camera_spec(value, allow_python=True)
        return value.strip()

    @field_validator("roi", mode="before")
    @classmethod
    def _parse_roi(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
            return None
        if isinstance(value, str):
            value = [part for part in value.replace(" ", "").split(",") if part]
        if not isinstance(value, list | tuple) or len(value) != 4:
            raise ValueError(
                "expected four comma-separated fractions x,y,w,h, e.g. 0.2,0.2,0.6,0.6"
            )
        try:
            x, y, w, h = (float(part) for part in value)
        except ValueError:
            raise ValueError("x,y,w,h must be numbers, e.g. 0.25,0.25,0.5,0.5") from None
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
            raise ValueError("x,y,w,h must be fractions of the frame with the box inside it")
        return (x, y, w, h)

    @field_validator("mqtt_url", mode="after")
    @classmethod
    def _parse_mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            MqttBroker(value.get_secret_value())  # raises ValueError with what is wrong
        return value

    @field_validator("mqtt_ca", mode="after")
    @classmethod
    def _check_mqtt_ca(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_ca_file(value)
        return value

    @field_validator("mqtt_prefix", "mqtt_discovery_prefix", mode="after")
    @classmethod
    def _check_topic_prefix(cls, value: str) -> str:
        return _topic_levels(value, "a topic prefix")

    @field_validator("mqtt_node_id", mode="after")
    @classmethod
    def _check_node_id(cls, value: str) -> str:
        if not NODE_ID.fullmatch(value):
            raise ValueError("the node id may hold only letters, digits, _ and -, e.g. kitchen_pi")
        return value

    @model_validator(mode="after")
    def _watching_needs_a_camera(self) -> ServiceSettings:
        if self.watching and not self.camera_enabled:
            what = "DIGITS_MQTT_URL" if self.mqtt_url is not None else "DIGITS_WATCH (--watch)"
            raise ValueError(
                f"{what} reads the camera continuously, but the camera is 'none'; "
                "set DIGITS_CAMERA (--camera) or leave the watch off"
            )
        return self

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> ServiceSettings:
        # A CA for a plain connection would be loaded by no one: the user believes the
        # connection is verified when nothing is even encrypted.
        broker = self.mqtt_broker
        if self.mqtt_ca is not None and broker is not None and not broker.tls:
            raise ValueError(
                "DIGITS_MQTT_CA (--mqtt-ca) names a CA to verify a TLS broker, but "
                "DIGITS_MQTT_URL is plain mqtt://: use mqtts:// (the broker's TLS port, "
                "usually 8883) or leave DIGITS_MQTT_CA unset"
            )
        return self

    @property
    def watching(self) -> bool:
        """The watch loop runs: asked for, or needed by a publisher."""
        return self.watch or self.mqtt_url is not None

    @property
    def mqtt_broker(self) -> MqttBroker | None:
        return None if self.mqtt_url is None else MqttBroker(self.mqtt_url.get_secret_value())

    @property
    def camera_enabled(self) -> bool:
        return self.camera.strip().lower() != "none"

    @property
    def token_value(self) -> str | None:
        return self.token.get_secret_value() if self.token else None


def load_settings(env_file: Path | None = None, **overrides: object) -> ServiceSettings:
    """Settings from flags (`overrides`, None meaning "not given"), the environment and an env file.

    A named env file that does not exist is an error: a typo there would otherwise silently
    fall back to the defaults.
    """
    if env_file is None and os.environ.get(ENV_FILE_VARIABLE):
        env_file = Path(os.environ[ENV_FILE_VARIABLE])
    if env_file is not None and not env_file.is_file():
        raise FileNotFoundError(f"env file {env_file} does not exist")
    given = {key: value for key, value in overrides.items() if value is not None}
    return ServiceSettings(_env_file=env_file, **given)


# Where the installer writes the settings the systemd unit reads (EnvironmentFile=).
INSTALLED_ENV_FILE = "/etc/pi-digits/digits.env"


def how_to_choose_camera() -> str:
    """How whoever started this service picks another camera: the setting is always
    DIGITS_CAMERA, but where it goes depends on how the service was started."""
    # systemd gives a Type=notify service (the installed unit) its socket; a terminal has none.
    if os.environ.get("NOTIFY_SOCKET"):
        return (f"to use another camera, set DIGITS_CAMERA in {INSTALLED_ENV_FILE} (opencv:0 "
                "for a USB camera, none for uploads only) and run sudo systemctl restart "
                "pi-digits")
    if os.environ.get("MAKELEVEL"):  # make exports it to every command it runs
        return ("to use another camera, start it as DIGITS_CAMERA=opencv:0 make serve (a USB "
                "camera) or DIGITS_CAMERA=none make serve (uploads only)")
    return ("to use another camera, start it with --camera opencv:0 (a USB camera) or "
            "--camera none (uploads only)")
