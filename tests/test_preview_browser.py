"""End to end: the real service on a video file, the preview page in headless Chromium.

Uses Debian's chromium and chromium-driver (.ci/run installs them). A screenshot of the page
lands in the test's tmp dir; set DIGITS_PREVIEW_SCREENSHOT=docs/preview.png to refresh the
README's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from preview_helpers import readable_digits, write_digit_video
from service_helpers import HANDWRITING, Service, running

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "browser-test-token"
VIDEO_DIGITS = [2, 7]
UPLOAD_LABEL = 4
WAIT_S = 60
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver: "
        "apt-get install -y chromium chromium-driver (.ci/run does)",
    ),
]


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, digit_model_path: Path, mnist_dir: Path
) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("preview_browser")
    digits = readable_digits(digit_model_path, mnist_dir, VIDEO_DIGITS)
    # Each digit stays in view for 25 frames: 5 s at the default 5 fps.
    video = write_digit_video(tmp / "digits.avi", [digits[d] for d in VIDEO_DIGITS], 25)
    yield from running(
        tmp, digit_model_path, "--camera", f"opencv:{video}", "--roi", "0.12,0.06,0.76,0.88",
        "--token", TOKEN, "--watch",
    )


@pytest.fixture
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,760",
                 # The network cut, as on a Pi without internet: only the service resolves.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def scan_read_right(service: Service, label: int) -> Path:
    """A real handwritten scan of `label` that the service reads right (via its API)."""
    for path in sorted((HANDWRITING / "images").glob(f"{label}_*.png"))[:20]:
        answer = httpx.post(
            service.base_url + "/predict",
            files={"file": (path.name, path.read_bytes(), "image/png")},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
        if answer.json()["number"] == str(label):
            return path
    raise AssertionError(f"none of the first 20 scans of {label} is read as {label}")


def test_page_shows_the_video_digits_and_reads_an_upload(
    service: Service, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.2)
    number = "return document.getElementById('reading-number').dataset.number || ''"

    # The token: the page answers with its login box until the browser presents it.
    driver.get(service.base_url + "/")
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    wait.until(lambda d: d.find_elements(By.ID, "stream"))

    # The live view plays (the MJPEG stream decodes) and the ROI is drawn over it.
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('stream'); return i.complete && i.naturalWidth > 0"))
    wait.until(lambda d: d.find_element(By.ID, "roi").is_displayed())

    # The page reads the video's digits as they come and go: both end up in the history.
    wait.until(lambda d: d.execute_script(number) in {str(n) for n in VIDEO_DIGITS})
    history = "return [...document.querySelectorAll('#history li')].map(l => l.dataset.number)"
    wait.until(lambda d: {str(n) for n in VIDEO_DIGITS} <= set(d.execute_script(history)))
    # The 28×28 input the model saw is shown, and a box marks the digit on the picture.
    inputs = "return [...document.querySelectorAll('#inputs img')].map(i => i.naturalWidth)"
    wait.until(lambda d: (seen := d.execute_script(inputs)) and set(seen) == {28})
    assert driver.find_elements(By.CSS_SELECTOR, "#boxes .box")
    # The watch loop's stable reading arrives over /readings/stream (an EventSource, which
    # presents the token cookie like the page's other requests).
    stable = "return document.getElementById('stable-number').dataset.number || ''"
    wait.until(lambda d: d.execute_script(stable) in {str(n) for n in VIDEO_DIGITS})
    assert "since" in driver.find_element(By.ID, "stable-since").text

    # An image file given to the drop zone's file input is read by POST /predict.
    scan = scan_read_right(service, UPLOAD_LABEL)
    driver.find_element(By.ID, "upload-input").send_keys(str(scan))
    upload = "return document.getElementById('upload-number').dataset.number || ''"
    wait.until(lambda d: d.execute_script(upload) == str(UPLOAD_LABEL))
    assert "%" in driver.find_element(By.ID, "upload-confidence").text

    # Let the live reading settle on a digit again for a tidy screenshot.
    wait.until(lambda d: d.execute_script(number) in {str(n) for n in VIDEO_DIGITS})
    assert driver.save_screenshot(str(tmp_path / "preview.png"))
    if target := os.environ.get("DIGITS_PREVIEW_SCREENSHOT"):
        assert driver.save_screenshot(target)
    assert TOKEN not in service.log()


def _log_in(driver: object, service: Service) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(service.base_url + "/")
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.ID, "stream"))


@pytest.mark.parametrize(("page", "title"), [
    ("/docs", ".swagger-ui .info .title"),
    ("/redoc", "h1"),
])
def test_api_docs_render_with_the_network_cut(
    service: Service, browser: object, page: str, title: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    _log_in(driver, service)
    driver.get(service.base_url + page)
    WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
        lambda d: any("Pi digit reader" in e.text for e in d.find_elements(By.CSS_SELECTOR, title))
    )
    assert "/predict" in driver.find_element(By.TAG_NAME, "body").text
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(url.endswith(".js") for url in loaded)
    # Everything the page needs came from the service. ReDoc's script also asks the internet
    # for its maker's logo (hard-coded) and leaves it out when that fails, as here.
    outside = [url for url in loaded if not url.startswith(service.base_url)]
    assert outside in ([], [REDOC_LOGO]), outside
