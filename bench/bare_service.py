"""The ceilings: a bare FastAPI endpoint that only receives the same multipart upload, and the
same endpoint that also runs the model once.

`POST /predict` takes the multipart field `file` as FastAPI's `UploadFile`, reads its bytes and
answers a tiny JSON with their count; `GET /readyz` answers 200. Nothing is decoded or read, so
its requests/s is what the web stack itself (uvicorn, Starlette's multipart parser, FastAPI's
routing and JSON answer) allows on this machine: the product's HTTP path can only approach it.

With `--model PATH` the endpoint also decodes the upload with OpenCV (grey, 28×28, light ink
on dark, scaled to [0, 1]; no other checks) and runs the product's model on it once, through the
device's runtime with one interpreter thread, on the event loop as the service does for an
upload this small; it answers `{"digit": N}`.
That is about the most an endpoint that must run this model on this upload can do: what is
left between it and the product is the product's own reading (its checks of the picture, the
answer, metrics and log line).

Served by uvicorn with the product's settings, one process.

    python bench/bare_service.py --port 8002 [--model models/digitnet_int8.tflite]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastapi import FastAPI, File, UploadFile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also when run as a script
from bench.serving import add_readyz, serve


def create_app(model: Path | None = None) -> FastAPI:
    if model is None:
        app = FastAPI(title="Bare multipart endpoint (the ceiling)")

        @app.post("/predict")
        async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008 (FastAPI's idiom)
            return {"bytes": len(await file.read())}

    else:
        import cv2
        import numpy as np

        from device.runtime import INPUT_SHAPE, DigitModel

        digits = DigitModel(model, threads=1)
        side = INPUT_SHAPE[0]
        app = FastAPI(title="Bare multipart endpoint with the model")

        @app.post("/predict")
        async def predict_digit(file: UploadFile = File(...)) -> dict:  # noqa: B008
            gray = cv2.imdecode(np.frombuffer(await file.read(), np.uint8), cv2.IMREAD_GRAYSCALE)
            if gray.shape != (side, side):
                gray = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)
            if gray.mean() > 127:  # dark ink on light paper: the model reads light on dark
                gray = 255 - gray
            probabilities = digits.predict((gray / np.float32(255))[np.newaxis])
            return {"digit": int(probabilities[0].argmax())}

    add_readyz(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--model", type=Path,
                        help="also decode the upload and run this model on it once")
    args = parser.parse_args(argv)
    from device.sidecar import ModelError

    try:
        app = create_app(args.model)
    except ModelError as exc:  # a missing or mismatched model: say so, no traceback
        raise SystemExit(f"error: {exc}") from None
    serve(app, args.host, args.port)


if __name__ == "__main__":
    main()
