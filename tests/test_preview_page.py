"""The preview page's switch and files, in process (no camera needed)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from device.service.app import create_app
from device.service.routes.preview import STATIC_TYPES, static_file
from device.service.settings import load_settings

PREVIEW_PATHS = ("/", "/stream.mjpg", "/preview/latest", "/static/app.js")


class Client:
    """In-process requests; ASGITransport runs no lifespan, so no camera is opened."""

    def __init__(self, model: Path, **settings: object) -> None:
        self.app = create_app(load_settings(model=model, camera="none", **settings))

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pi") as client:
                return await client.get(path)

        return asyncio.run(fetch())


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_preview_switched_off_is_not_found(
    how: str, digit_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "environment":
        monkeypatch.setenv("DIGITS_PREVIEW", "false")
        app = Client(digit_model_path)
    else:
        app = Client(digit_model_path, preview=False)
    for path in PREVIEW_PATHS:
        assert app.get(path).status_code == 404, path
    assert app.get("/healthz").status_code == 200  # the rest of the service is unaffected
    # With a token set and the page off, / is a JSON 401, not the login box.
    secured = Client(digit_model_path, preview=False, token="t")
    assert secured.get("/").headers["content-type"].startswith("application/json")


def test_page_is_served_with_its_files(digit_model_path: Path) -> None:
    app = Client(digit_model_path)
    page = app.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("app.js", "style.css"):
        assert f"/static/{name}" in page.text
        answer = app.get(f"/static/{name}")
        assert answer.status_code == 200
        assert answer.headers["content-type"].split(";")[0] == STATIC_TYPES[name].split(";")[0]
    assert app.get("/static/../settings.py").status_code == 404
    assert app.get("/static/secret.txt").status_code == 404


def test_page_needs_nothing_from_the_network() -> None:
    """The Pi may be offline: no CDN, no web font, no external script or style."""
    for name in STATIC_TYPES:
        text = static_file(name).decode()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name


def test_readings_without_a_camera_say_why(digit_model_path: Path) -> None:
    latest = Client(digit_model_path).get("/preview/latest")
    assert latest.status_code == 200
    body = latest.json()
    assert body["camera"]["ready"] is False
    assert "camera disabled" in body["camera"]["reason"]
    assert body["reading"] is None and body["history"] == []
    assert "camera disabled" in body["frame"]["reason"]  # what the stream's placeholder says
