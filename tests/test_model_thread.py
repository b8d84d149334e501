"""The service's model thread: the event loop goes on while the model runs, and every caller
gets its own answer or its own error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import cv2
import httpx
import numpy as np
import pytest

from device.reader import DigitReader
from device.runtime import DigitModel
from device.service.app import create_app
from device.service.context import ServiceContext, build_context
from device.service.model_thread import ModelThread
from device.service.settings import load_settings
from tests.camera_like import mnist_test, paper_frame

WAIT_S = 10.0  # only a hang waits this long


class GatedModel:
    """A model whose predict blocks until `gate` is set, and keeps which thread ran it."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.threads: list[threading.Thread] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.threads.append(threading.current_thread())
        if not self.gate.wait(WAIT_S):
            raise TimeoutError("nobody opened the gate")
        if np.isnan(batch).any():
            raise ValueError("not a model input")
        return batch.reshape(len(batch), -1)[:, :10] * 2


def test_the_loop_runs_while_the_model_does() -> None:
    """The gate is opened by another task on the loop: were the model run on the loop itself,
    that task could never run and predict would fail after WAIT_S."""
    model = GatedModel()
    worker = ModelThread(model)

    async def main() -> np.ndarray:
        asyncio.get_running_loop().call_soon(model.gate.set)
        return await worker.predict(np.ones((2, 28, 28, 1), np.float32))

    try:
        out = asyncio.run(main())
    finally:
        worker.close()
    assert out.shape == (2, 10) and (out == 2).all()
    assert [t.name for t in model.threads] == ["model"]


def test_each_caller_gets_its_own_answer_or_error() -> None:
    model = GatedModel()
    model.gate.set()
    worker = ModelThread(model)
    bad = np.full((1, 28, 28, 1), np.nan, np.float32)

    async def main() -> list:
        batches = [np.full((1, 28, 28, 1), i, np.float32) for i in range(20)]
        calls = [worker.predict(b) for b in batches] + [worker.predict(bad)]
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        *answers, error = asyncio.run(main())
    finally:
        worker.close()
    assert [float(a[0, 0]) for a in answers] == [2.0 * i for i in range(20)]
    assert isinstance(error, ValueError) and "not a model input" in str(error)


def test_a_caller_that_goes_away_leaves_the_thread_serving() -> None:
    model = GatedModel()
    worker = ModelThread(model)

    async def main() -> np.ndarray:
        impatient = asyncio.ensure_future(worker.predict(np.ones((1, 28, 28, 1), np.float32)))
        await asyncio.sleep(0)
        impatient.cancel()  # its client hung up while the model ran
        with pytest.raises(asyncio.CancelledError):
            await impatient
        model.gate.set()
        return await worker.predict(np.full((1, 28, 28, 1), 3, np.float32))

    try:
        assert float(asyncio.run(main())[0, 0]) == 6.0
    finally:
        worker.close()
    # Only this worker's own thread: other tests' services may still hold theirs.
    assert len(set(model.threads)) == 1 and not model.threads[0].is_alive()


def test_reading_beside_the_loop_equals_reading(digit_model_path, mnist_dir) -> None:
    """read_beside is read with the model on the model thread: the same digits, boxes,
    confidences and reasons, for one digit, a number with a join to weigh, and no digit."""
    model = DigitModel(digit_model_path)
    reader = DigitReader(model)
    worker = ModelThread(model)
    images, labels = mnist_test(mnist_dir)
    picks = [int(np.flatnonzero(labels == d)[0]) for d in (1, 4, 7)]
    frames = [
        paper_frame([images[picks[1]]], seed=1),
        paper_frame([images[i] for i in picks], seed=3),
        np.full((240, 320), 200, np.uint8),
        images[picks[2]],
    ]

    async def beside() -> list:
        return [await reader.read_beside(f, worker.predict) for f in frames]

    try:
        results = asyncio.run(beside())
    finally:
        worker.close()
    for alone, on_thread in zip((reader.read(f) for f in frames), results, strict=True):
        assert on_thread.digits == alone.digits
        assert (on_thread.number, on_thread.reason) == (alone.number, alone.reason)
        assert on_thread.uncertain == alone.uncertain
    assert [r.number for r in results] == ["4", "147", None, "7"]


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


@dataclass
class RecordedService:
    app: object
    context: ServiceContext
    model: RecordingModel


@pytest.fixture
def recorded_service(digit_model_path) -> Iterator[RecordedService]:
    """The service in process (no lifespan, no camera) with a model that records its threads."""
    settings = load_settings(model=digit_model_path, camera="none")
    model = RecordingModel(DigitModel(digit_model_path))
    context = build_context(settings, model=model)
    try:
        yield RecordedService(create_app(settings, context), context, model)
    finally:
        context.model_thread.close()


def _client(service: RecordedService) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://pi")


RAW_PNG = {"content-type": "image/png"}


def test_small_uploads_hand_the_model_over_only_beside_other_uploads(
    recorded_service, mnist_dir
) -> None:
    """An upload alone runs the model on the loop's own thread (a hand-over would only add to
    its wait); with another upload in flight, on the model thread, so the loop can serve it."""
    model, context = recorded_service.model, recorded_service.context
    images, labels = mnist_test(mnist_dir)
    seven = cv2.imencode(".png", images[int(np.flatnonzero(labels == 7)[0])])[1].tobytes()

    async def main() -> list[dict]:
        loop_thread = threading.current_thread().name
        body_held = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:  # an upload still arriving
            yield seven[:20]
            await body_held.wait()
            yield seven[20:]

        async with _client(recorded_service) as client:
            alone = await client.post("/predict", content=seven, headers=RAW_PNG)
            assert model.threads == [loop_thread]
            arriving = asyncio.ensure_future(
                client.post("/predict", content=slow_body(), headers=RAW_PNG)
            )
            while context.uploads_in_flight == 0:
                await asyncio.sleep(0.001)
            beside = await client.post("/predict", content=seven, headers=RAW_PNG)
            assert model.threads[1:] == ["model"]
            body_held.set()
            last = await arriving  # alone again by the time its body is complete
            assert model.threads[2:] == [loop_thread]
            return [r.json() for r in (alone, beside, last)]

    answers = asyncio.run(main())
    assert [a["number"] for a in answers] == ["7", "7", "7"]
    assert answers[0]["digits"] == answers[1]["digits"] == answers[2]["digits"]
    assert context.uploads_in_flight == 0


def test_uploads_that_arrive_together_all_hand_the_model_over(recorded_service, mnist_dir) -> None:
    """Complete uploads started at once: none may take the model on the loop as if alone."""
    images, labels = mnist_test(mnist_dir)
    picks = [int(np.flatnonzero(labels == d)[0]) for d in (3, 5, 8, 9)]

    async def main() -> list[httpx.Response]:
        async with _client(recorded_service) as client:
            return await asyncio.gather(*(
                client.post("/predict", content=cv2.imencode(".png", images[i])[1].tobytes(),
                            headers=RAW_PNG)
                for i in picks
            ))

    answers = asyncio.run(main())
    assert [a.json()["number"] for a in answers] == ["3", "5", "8", "9"]
    assert recorded_service.model.threads == ["model"] * 4
    assert recorded_service.context.uploads_in_flight == 0
