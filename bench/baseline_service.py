"""The baseline: what a user of the classroom notebooks would serve instead of this product.

FastAPI plus TensorFlow: load the saved Keras model once at start-up, then for every upload decode
it with Pillow, make it grey, resize it to 28×28, invert it (MNIST is white on black) and call
`model.predict`. Same endpoint shape as the product (POST /predict with a multipart field `file`,
GET /readyz), served by uvicorn with one worker, as the product is. Nothing here is crippled:
this is the code of a reasonable notebook user, not a straw man.

    python bench/baseline_service.py --model models/digitnet.keras --port 8001
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

# Quieten TensorFlow's C++ start-up banner, as most tutorials do; it changes no timing.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image, UnidentifiedImageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also when run as a script
from bench.serving import add_readyz, serve


def create_app(model_path: Path) -> FastAPI:
    model = keras.models.load_model(model_path)
    app = FastAPI(title="Keras digit reader (baseline)")

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008 (FastAPI's idiom)
        data = await file.read()
        try:
            image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
        except (UnidentifiedImageError, OSError) as exc:
            raise HTTPException(400, f"not an image: {exc}") from None
        x = (255.0 - np.asarray(image, dtype=np.float32)) / 255.0
        probabilities = model.predict(x.reshape(1, 28, 28, 1), verbose=0)[0]
        digit = int(np.argmax(probabilities))
        return {
            "digit": digit,
            "confidence": float(probabilities[digit]),
            "probabilities": [float(p) for p in probabilities],
        }

    add_readyz(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/digitnet.keras"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"Keras model {args.model} not found; pass --model PATH")
    serve(create_app(args.model), args.host, args.port)


if __name__ == "__main__":
    main()
