"""The HTTP service as a client sees it: a real uvicorn process on loopback, every endpoint and
every kind of bad input."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image
from service_helpers import REPO, SCENE_DIGIT, Service, digit_scene, handwritten_png, running

from device.answer import Answer
from device.picture import small_picture_header
from device.reader import DigitReader
from device.runtime import DigitModel
from device.service.routes.predict import INLINE_MAX_PIXELS
from tests.camera_like import heic_bytes

TOKEN = "s3cret-token"


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(served: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        yield http


def _assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert body["detail"]
    return body


# ---- the endpoints --------------------------------------------------------------------------


def test_healthz_says_alive(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_health_answers_head_as_uptime_monitors_probe(client: httpx.Client) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert response.headers["content-type"] == "application/json"


# Paths whose answer is the same from one request to the next, so GET's Content-Length is what
# HEAD must say; the others (a fresh reading, counters, a timestamp) differ between two calls.
_SAME_EVERY_TIME = {"/healthz", "/model", "/", "/static/app.js", "/openapi.json", "/docs", "/redoc"}


def test_every_get_path_answers_head_with_its_headers_and_no_body(
    client: httpx.Client, served: Service
) -> None:
    # HEAD /, HEAD /stream.mjpg and every GET route but the health checks were 405 Method Not
    # Allowed (found probing with `curl -I`); HTTP has a server answer HEAD wherever it
    # answers GET (RFC 9110 §9.3.2), and uptime monitors probe with it.
    spec = client.get("/openapi.json").json()
    paths = [path for path, operations in spec["paths"].items() if "get" in operations]
    paths += ["/static/app.js", "/openapi.json", "/docs", "/redoc"]
    assert {"/", "/stream.mjpg", "/readings/stream", "/predict", "/metrics"} <= set(paths)
    for path in paths:
        if path == "/stream.mjpg":
            continue  # its GET never ends: see the test below
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        if path in _SAME_EVERY_TIME:
            assert head.headers["content-length"] == got.headers["content-length"], path
    # Logged and counted as the HEAD it was, under its route.
    access = served.wait_for_log_entry(
        lambda entry: entry["method"] == "HEAD" and entry["path"] == "/model",
        "device.service.access")
    assert access["status"] == 200
    assert ('digits_http_requests_total{endpoint="/model",method="HEAD",status="200"}'
            in client.get("/metrics").text)
    # A method a path does not take is answered 405 with the ones it does, HEAD among them.
    assert set(client.put("/healthz").headers["allow"].split(", ")) == {"GET", "HEAD"}


def _head_then_healthz(port: int, path: str) -> tuple[bytes, bytes]:
    """HEAD `path` and, on the same connection right behind it, GET /healthz: the head of the
    first answer, and everything after it. The second answer comes only once the first has
    ended, so a HEAD that started an endless body would leave this waiting (and time out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b""
        while not answer.endswith(b'{"status":"alive"}'):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    return head, rest


@pytest.fixture(scope="module")
def watching(
    tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path, camera_scene_dir: Path
) -> Iterator[Service]:
    """A service with the watch loop on, so /readings/stream streams."""
    tmp = tmp_path_factory.mktemp("watching")
    yield from running(tmp, digit_model_path, "--camera", f"file:{camera_scene_dir}", "--watch")


def test_head_on_a_stream_answers_its_headers_and_starts_no_stream(
    served: Service, watching: Service
) -> None:
    for service, path, content_type in (
        (served, "/stream.mjpg", b"content-type: multipart/x-mixed-replace"),
        (watching, "/readings/stream", b"content-type: text/event-stream"),
    ):
        head, rest = _head_then_healthz(service.port, path)
        assert head.startswith(b"HTTP/1.1 200 "), (path, head)
        assert content_type in head.lower(), (path, head)
        assert b"cache-control: no-store" in head.lower(), (path, head)
        # Not a byte of the stream: the next answer follows the headers right away.
        assert rest.startswith(b"HTTP/1.1 200 "), (path, rest[:200])
    clients = re.search(rb"^digits_stream_clients (\S+)$",
                        httpx.get(watching.base_url + "/metrics").content, re.M)
    assert clients is not None and float(clients[1]) == 0


def test_readyz_reports_model_and_camera(client: httpx.Client, digit_model_path: Path) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True
    assert body["model"]["name"] == digit_model_path.stem
    assert body["camera"]["enabled"] is True
    assert body["camera"]["ready"] is True


def _check_prediction(body: dict, source: str) -> None:
    # The route writes its answer without FastAPI's validation: it must be an `Answer` exactly,
    # every field and type (what the OpenAPI document promises).
    assert Answer.model_validate(body, strict=True).model_dump(mode="json") == body
    assert body["source"] == source
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=0.02)
    assert body["confidence"] == pytest.approx(max(body["probabilities"]))
    assert body["digit"] == int(np.argmax(body["probabilities"]))
    assert body["number"] == "".join(str(found["digit"]) for found in body["digits"])
    assert set(body["timings_ms"]) == {"capture", "preprocess", "inference", "total"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["inference"]
    assert body["reason"] is None


def test_get_predict_reads_the_camera(client: httpx.Client, digit_model_path: Path) -> None:
    response = client.get("/predict")
    assert response.status_code == 200, response.text
    body = response.json()
    _check_prediction(body, "camera")
    assert body["digit"] == SCENE_DIGIT
    assert body["model"]["name"] == digit_model_path.stem
    box = body["digits"][0]["box"]
    # The digit sits in the middle of the 320×240 scene.
    assert 80 < box["x"] + box["w"] / 2 < 240
    assert 60 < box["y"] + box["h"] / 2 < 180


@pytest.fixture(scope="module")
def local_reader(digit_model_path: Path) -> DigitReader:
    return DigitReader(DigitModel(digit_model_path))


def test_post_multipart_answers_what_the_reader_reads(
    client: httpx.Client, local_reader: DigitReader
) -> None:
    correct = 0
    for label in range(8):  # handwriting_dev has the digits 0..7
        png = handwritten_png(label)
        response = client.post("/predict", files={"file": ("digit.png", png)})
        assert response.status_code == 200, response.text
        body = response.json()
        _check_prediction(body, "upload")
        local = local_reader.read(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
        assert body["digit"] == local.digit
        # Answers give probabilities to 4 decimals (device.answer).
        assert body["probabilities"] == pytest.approx(local.probabilities, abs=5e-5)
        assert [d["box"] for d in body["digits"]] == [
            dict(zip("xywh", d.box, strict=True)) for d in local.digits
        ]
        correct += body["digit"] == label
    assert correct >= 6, f"only {correct} of 8 real handwritten digits read right"


def test_raw_body_and_multipart_give_the_same_reading(client: httpx.Client) -> None:
    png = handwritten_png(2, 3)
    raw = client.post("/predict", content=png, headers={"Content-Type": "image/png"}).json()
    form = client.post("/predict", files={"file": ("d.png", png, "image/png")}).json()
    assert raw["probabilities"] == form["probabilities"]
    assert raw["digits"] == form["digits"]


def test_jpeg_upload_is_read(client: httpx.Client) -> None:
    gray = np.array(Image.open(io.BytesIO(handwritten_png(6))).convert("L"))
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "JPEG", quality=90)
    response = client.post(
        "/predict", content=buffer.getvalue(), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status_code == 200
    assert response.json()["digit"] == 6


def test_an_iphone_heic_photo_is_read_upright(client: httpx.Client) -> None:
    # A portrait photo of a sheet as an iPhone stores it: HEVC in HEIC, turned, with the turn
    # to show it in its metadata; both upload forms, as curl sends a file from a Mac.
    pytest.importorskip(
        "pillow_heif", reason="pillow-heif (the dev extra) writes the test's HEIC file")
    scene = digit_scene(7, size=(320, 240))
    heic = heic_bytes(np.rot90(scene, 1).copy(), 6, quality=80)  # 6: turn clockwise to show
    raw = client.post("/predict", content=heic, headers={"Content-Type": "image/heic"})
    form = client.post("/predict", files={"file": ("IMG_0001.HEIC", heic, "image/heic")})
    for response in (raw, form):
        assert response.status_code == 200, response.text
        assert response.json()["digit"] == 7


def test_a_phone_sized_jpeg_reads_as_its_png_with_boxes_in_its_own_pixels(
    client: httpx.Client,
) -> None:
    # A 12-megapixel JPEG decodes a quarter as wide (device.picture.shrink_for); its reading
    # and boxes are the full-size PNG's, turned upright where it was stored turned.
    scene = cv2.resize(digit_scene(4), (4032, 3024), interpolation=cv2.INTER_CUBIC)
    png = client.post("/predict", files={"file": ("scene.png", _png(scene))}).json()
    exif = Image.Exif()
    for orientation, stored in ((1, scene), (6, np.rot90(scene, 1).copy())):
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        Image.fromarray(stored).save(buffer, "JPEG", quality=92, exif=exif.tobytes())
        jpeg = client.post("/predict", files={"file": ("IMG_1.jpg", buffer.getvalue())}).json()
        assert (jpeg["number"], png["number"]) == ("4", "4")
        for ours, full in zip(jpeg["digits"], png["digits"], strict=True):
            assert all(abs(ours["box"][k] - full["box"][k]) <= 8 for k in "xywh"), (ours, full)
            assert ours["box"]["x"] + ours["box"]["w"] <= 4032
            assert ours["box"]["y"] + ours["box"]["h"] <= 3024


def test_blank_page_is_200_with_no_digit_and_a_reason(client: httpx.Client) -> None:
    blank = np.full((120, 160), 230, np.uint8)
    response = client.post("/predict", files={"file": ("blank.png", _png(blank))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["digit"] is None
    assert body["number"] is None
    assert body["digits"] == []
    assert body["reason"]


def test_model_endpoint_returns_the_sidecar(client: httpx.Client, digit_model_path: Path) -> None:
    body = client.get("/model").json()
    sidecar = json.loads(digit_model_path.with_suffix(".json").read_text())
    assert body["sidecar"] == sidecar
    assert body["sha256"] == sidecar["sha256"]
    assert body["runtime"] == "ai_edge_litert"


def test_metrics_count_requests_stages_and_readings(client: httpx.Client) -> None:
    client.post("/predict", files={"file": ("d.png", handwritten_png(5))})
    text = client.get("/metrics").text
    assert 'digits_http_requests_total{endpoint="/predict",method="POST",status="200"}' in text
    assert 'digits_readings_total{digit="5",source="upload"}' in text
    for stage in ("capture", "preprocess", "inference", "total"):
        assert f'digits_stage_duration_seconds_count{{source="upload",stage="{stage}"}}' in text
    assert 'digits_camera_errors_total{kind="timeout"}' in text
    assert "digits_model_info{" in text
    # Who answered the digits: the shipped model's first look or the whole model, counted.
    answered = {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
                if line.startswith("digits_model_answers_total{")}
    assert set(answered) == {"first_look", "model"} and sum(answered.values()) >= 1


def test_docs_and_openapi_describe_both_upload_forms(client: httpx.Client) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*"} <= set(content)
    assert "get" in spec["paths"]["/predict"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_need_nothing_from_the_internet(
    client: httpx.Client, served: Service, page: str
) -> None:
    # Swagger UI and ReDoc come from the installed package (fastapi-offline), so the pages
    # work on a Pi without internet; FastAPI's own pages load them from a CDN.
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    absolute = re.findall(r"https?://[^\s\"'<>)]+", html)
    assert [url for url in absolute if not url.startswith(served.base_url)] == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000, asset


def test_one_json_log_line_per_request(client: httpx.Client, served: Service) -> None:
    probe = f"/healthz?probe={time.time_ns()}"
    client.get(probe)
    missing = "/no-such-page-" + probe[-8:]
    client.get(missing)
    access = "device.service.access"
    page = served.wait_for_log_entry(lambda entry: entry["path"] == missing, access)
    assert page["status"] == 404
    health = [entry for entry in served.log_entries(access) if entry["path"] == "/healthz"]
    assert health
    assert health[-1]["status"] == 200
    assert health[-1]["duration_ms"] >= 0


# ---- bad input: always a JSON 4xx that says what was expected, never a 500 ------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"just text", "headers": {"Content-Type": "text/plain"}}, 415,
         "unsupported_media_type"),
        ({"content": b"just text", "headers": {"Content-Type": "image/png"}}, 415, "not_an_image"),
        ({"content": b"", "headers": {"Content-Type": "image/png"}}, 400, "empty_upload"),
        ({"data": {"note": "hello"}, "files": {"other": ("a.png", b"x")}}, 422,
         "missing_file_field"),
        ({"files": {"file": ("empty.png", b"")}}, 400, "empty_upload"),
        ({"files": {"file": ("bomb.png", _bomb_png(50_000, 50_000))}}, 413, "image_too_large"),
        ({"content": b"--zz\r\nnonsense", "headers": {
            "Content-Type": "multipart/form-data; boundary=zz"}}, 400, "malformed_multipart"),
        ({"content": b"x", "headers": {"Content-Type": "multipart/form-data"}}, 400,
         "malformed_multipart"),
    ],
    ids=["text-type", "text-as-png", "empty", "no-file-field", "empty-file", "bomb",
         "cut-multipart", "no-boundary"],
)  # fmt: skip
def test_bad_uploads_are_4xx_with_a_reason(
    client: httpx.Client, kwargs: dict, status: int, code: str
) -> None:
    body = _assert_error(client.post("/predict", **kwargs), status, code)
    assert body["expected"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "identity, gzip"])
def test_a_compressed_body_is_refused_by_its_encoding_not_decompressed(
    client: httpx.Client, encoding: str
) -> None:
    """Once 'not an image'; and decompressing it would let a small body unpack past the
    upload limits."""
    png = handwritten_png(SCENE_DIGIT)
    for kwargs in ({"content": gzip.compress(png), "headers": {"Content-Type": "image/png"}},
                   {"files": {"file": ("d.png", png)}}):
        headers = {**kwargs.pop("headers", {}), "Content-Encoding": encoding}
        response = client.post("/predict", headers=headers, **kwargs)
        body = _assert_error(response, 415, "unsupported_content_encoding")
        assert f"Content-Encoding {encoding.removeprefix('identity, ')};" in body["detail"]
        assert "unencoded (no Content-Encoding header)" in body["expected"]
        assert response.headers["accept-encoding"] == "identity"
    plain = client.post("/predict", content=png, headers={
        "Content-Type": "image/png", "Content-Encoding": "identity"})
    assert plain.status_code == 200, plain.text


def test_base64_text_and_data_urls_are_refused_as_text_not_as_no_image(
    client: httpx.Client,
) -> None:
    png = handwritten_png(SCENE_DIGIT)
    text = base64.b64encode(png)
    for kwargs in ({"content": text, "headers": {"Content-Type": "image/png"}},
                   {"files": {"file": ("digit.b64", text)}},
                   {"content": b"data:image/png;base64," + text,
                    "headers": {"Content-Type": "image/png"}}):
        body = _assert_error(client.post("/predict", **kwargs), 415, "image_as_text")
        assert "base64" in body["detail"]
        assert "curl --data-binary @digit.png" in body["expected"]


def test_truncated_png_and_jpeg_are_400(client: httpx.Client) -> None:
    noise = (np.random.default_rng(1).random((200, 200)) * 255).astype(np.uint8)
    png = _png(noise)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    for data, kind in ((png[: len(png) // 3], "png"), (buffer.getvalue()[:300], "jpeg")):
        response = client.post("/predict", content=data, headers={"Content-Type": f"image/{kind}"})
        _assert_error(response, 400, "corrupt_image")


@pytest.mark.parametrize(
    ("shape", "why"),
    [((1, 10_000), "too small"), ((10_000, 1), "too small"), ((12, 4_000), "too narrow"),
     ((4_000, 12), "too narrow"), ((4, 4), "too small"), ((1, 2), "too small")],
)
def test_a_picture_too_small_or_thin_for_a_digit_is_400_never_500(
    client: httpx.Client, shape: tuple[int, int], why: str
) -> None:
    """A strip of 1×10,000 px once failed inside OpenCV's resize: a 500 for a client's picture."""
    picture = np.full(shape, 230, np.uint8)
    picture[:, ::7] = 20  # strokes, so it is not blank
    body = _assert_error(client.post("/predict", files={"file": ("s.png", _png(picture))}),
                         400, "unusable_image")
    assert why in body["detail"] and f"{shape[1]}×{shape[0]} px" in body["detail"]
    assert client.get("/healthz").status_code == 200


def test_tiny_uploads_read_on_the_event_loop_keep_their_answers_and_errors(
    client: httpx.Client,
) -> None:
    """28×28 uploads are read right on the event loop, model included: the same answers, the
    same 4xx."""
    digit = np.zeros((28, 28), np.uint8)
    cv2.line(digit, (14, 4), (14, 23), 255, 3)  # a 1: 20 px tall, in the middle
    for picture in (digit, 255 - digit):
        # so it takes the inline path
        assert small_picture_header(_png(picture), INLINE_MAX_PIXELS) is not None
        answer = client.post("/predict", files={"file": ("d.png", _png(picture), "image/png")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["digit"] == 1
    noise = (np.random.default_rng(2).random((28, 28)) * 255).astype(np.uint8)
    cut = _png(noise)[:60]  # its header says 28×28, its pixels are missing
    _assert_error(client.post("/predict", content=cut, headers={"Content-Type": "image/png"}),
                  400, "corrupt_image")
    assert client.get("/healthz").status_code == 200


def test_the_upload_route_solves_no_fastapi_dependencies() -> None:
    """POST /predict finds its context itself: one `Depends` costs FastAPI ~80 µs a request,
    a quarter of a whole request at the bare multipart ceiling (bench/http_ceiling.py)."""
    from fastapi.routing import APIRoute

    from device.service.routes.predict import router

    upload = next(r for r in router.routes if isinstance(r, APIRoute) and "POST" in r.methods)
    assert upload.dependant.dependencies == []


def test_declared_oversize_body_is_413_before_it_is_sent(client: httpx.Client) -> None:
    nine_mb = b"\0" * (9 * 1024 * 1024)
    response = client.post("/predict", content=nine_mb, headers={"Content-Type": "image/png"})
    body = _assert_error(response, 413, "upload_too_large")
    assert "8388608" in body["detail"]


def test_streamed_oversize_body_is_cut_off_at_the_limit(
    client: httpx.Client, served: Service
) -> None:
    # No Content-Length (chunked): the app stops reading at the limit and answers 413; uvicorn
    # discards the rest of the body as it arrives instead of buffering 64 MB.
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        block = b"\x89PNG" + b"\0" * (1024 * 1024 - 4)
        for _ in range(64):
            sent += len(block)
            yield block

    rss_before = served.rss_kib()
    try:
        response = client.post("/predict", content=endless(), headers={"Content-Type": "image/png"})
    except httpx.TransportError:
        pass  # the server may close the connection while we are still sending: also a refusal
    else:
        _assert_error(response, 413, "upload_too_large")
    assert sent == 64 * 1024 * 1024  # the client did send it all...
    assert served.rss_kib() - rss_before < 24 * 1024  # ...but the server kept at most the limit
    assert client.get("/healthz").status_code == 200


def test_multipart_oversize_is_413(client: httpx.Client) -> None:
    big = b"\0" * (8 * 1024 * 1024 + 10)
    response = client.post("/predict", files={"file": ("big.png", big)})
    _assert_error(response, 413, "upload_too_large")


def test_unknown_path_and_wrong_method_are_json(client: httpx.Client) -> None:
    _assert_error(client.get("/nope"), 404, "not_found")
    _assert_error(client.delete("/predict"), 405, "method_not_allowed")


def test_a_405_lists_every_method_its_path_takes(client: httpx.Client) -> None:
    # PUT /predict said "Allow: GET, HEAD" (found probing with curl): the router answers with
    # the first route that matches the path, and POST /predict is another route. RFC 9110
    # §15.5.6 has the Allow header list every method the path takes.
    response = client.put("/predict", content=b"")
    _assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


# ---- token, env file, camera none ---------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path) -> Iterator[Service]:
    """Configured only through an env file with the documented DIGITS_* names."""
    tmp = tmp_path_factory.mktemp("guarded")
    env_file = tmp / "digits.env"
    env_file.write_text(
        f"DIGITS_TOKEN={TOKEN}\nDIGITS_CAMERA=none\nDIGITS_MAX_UPLOAD_BYTES=100000\n"
        "DIGITS_LOG_LEVEL=INFO\n"
    )
    yield from running(tmp, digit_model_path, env={"DIGITS_ENV_FILE": str(env_file)})


PROTECTED = ["/readyz", "/predict", "/metrics", "/model", "/docs", "/openapi.json"]


@pytest.mark.parametrize("path", PROTECTED)
def test_token_is_required_everywhere_but_healthz(guarded: Service, path: str) -> None:
    url = guarded.base_url + path
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"
    authorized = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    # GET /predict without a camera is a 503, but it got past the token.
    assert authorized.status_code in {200, 503}
    assert httpx.get(guarded.base_url + "/healthz").status_code == 200


def test_camera_none_is_ready_for_uploads_and_says_so(guarded: Service) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ready = httpx.get(guarded.base_url + "/readyz", headers=auth)
    assert ready.status_code == 200
    assert ready.json()["camera"]["enabled"] is False
    assert "disabled" in ready.json()["camera"]["reason"]
    _assert_error(httpx.get(guarded.base_url + "/predict", headers=auth), 503, "camera_disabled")
    upload = httpx.post(
        guarded.base_url + "/predict", files={"file": ("d.png", _png(digit_scene(4)))}, headers=auth
    )
    assert upload.status_code == 200
    assert upload.json()["digit"] == 4
    assert "serving uploads only" in guarded.log()


def test_env_file_limit_applies(guarded: Service) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "image/png"}
    response = httpx.post(guarded.base_url + "/predict", content=b"\0" * 100_001, headers=auth)
    assert _assert_error(response, 413, "upload_too_large")


def test_the_command_line_answers_what_http_answers(
    client: httpx.Client, digit_model_path: Path, tmp_path: Path
) -> None:
    # One schema (device.answer): the same image read by `python -m device predict --json` and
    # by POST /predict gives the same answer, but for how it came and how long it took.
    image = tmp_path / "four.png"
    image.write_bytes(handwritten_png(4))
    done = subprocess.run(
        [sys.executable, "-m", "device", "predict", "--json", str(image),
         "--model", str(digit_model_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_cli = json.loads(done.stdout)
    from_http = client.post("/predict", files={"file": ("four.png", image.read_bytes())}).json()
    assert (from_cli["source"], from_cli["file"]) == ("file", str(image))
    assert (from_http["source"], from_http["file"]) == ("upload", None)
    assert set(from_cli["timings_ms"]) == set(from_http["timings_ms"])
    assert from_cli["digits"] and from_cli["digit"] == 4
    for volatile in ("source", "file", "timings_ms"):
        del from_cli[volatile], from_http[volatile]
    assert from_cli == from_http
    assert Answer.model_validate_json(done.stdout).digit == 4
