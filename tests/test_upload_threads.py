"""Where POST /predict reads an upload: one no larger than a model input (an MNIST file) right on
the event loop's own thread, model included; anything larger on a worker thread, so that a
photo's milliseconds of decoding and searching never stop the loop."""

from __future__ import annotations

import asyncio
import threading

import cv2
import httpx
import numpy as np

from device.runtime import DigitModel
from device.service.app import create_app
from device.service.context import build_context
from device.service.settings import load_settings
from tests.camera_like import mnist_test, paper_frame


class RecordingModel:
    """A real model that keeps the name of the thread each predict ran on."""

    def __init__(self, model: DigitModel) -> None:
        self._model = model
        self.threads: list[str] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        return self._model.predict(batch)

    def __getattr__(self, name: str) -> object:
        return getattr(self._model, name)


def test_a_model_input_sized_upload_is_read_on_the_loop_and_a_larger_one_beside_it(
    digit_model_path, mnist_dir
) -> None:
    settings = load_settings(model=digit_model_path, camera="none")
    model = RecordingModel(DigitModel(digit_model_path))
    app = create_app(settings, build_context(settings, model=model))  # no lifespan: no camera
    images, labels = mnist_test(mnist_dir)
    seven = images[int(np.flatnonzero(labels == 7)[0])]
    pictures = [seven, paper_frame([seven], seed=1)]  # 28×28, then a 640×480-ish scene

    async def main() -> tuple[str, list[httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pi") as client:
            answers = [
                await client.post("/predict", content=cv2.imencode(".png", p)[1].tobytes(),
                                  headers={"content-type": "image/png"})
                for p in pictures
            ]
        return threading.current_thread().name, answers

    loop_thread, answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert [a.json()["number"] for a in answers] == ["7", "7"]
    assert model.threads[0] == loop_thread
    assert model.threads[1] != loop_thread
