"""Every knob of the HTTP service in one place.

Values come, highest priority first, from command-line flags, `DIGITS_*` environment variables,
an env file (`--env-file` or `$DIGITS_ENV_FILE`, the file systemd's `EnvironmentFile=` points at)
and the defaults below. The variable names are part of the deployment contract: keep them stable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from device.camera_specs import SPEC_FORMS, parse_camera_spec

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "digitnet_int8.tflite"
ENV_FILE_VARIABLE = "DIGITS_ENV_FILE"

Roi = tuple[float, float, float, float]


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
    threads: int = Field(2, ge=1, le=64, description="interpreter threads")
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1, description="largest accepted upload")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="largest accepted width×height (decompression-bomb guard)"
    )
    token: SecretStr | None = Field(None, description="bearer token required on all but /healthz")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    preview: bool = Field(True, description="serve the live preview page at /")
    preview_fps: float = Field(
        5.0, gt=0, le=30, description="frame-rate cap of the preview stream /stream.mjpg"
    )
    capture_timeout_s: float = Field(
        5.0, gt=0, description="a camera read slower than this is hung"
    )
    camera_retry_s: float = Field(
        2.0, gt=0,
        description="first pause before reopening a failed camera; backs off to 5x that",
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
