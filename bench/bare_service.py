"""The ceiling: a bare FastAPI endpoint that only receives the same multipart upload.

`POST /predict` takes the multipart field `file` as FastAPI's `UploadFile`, reads its bytes and
answers a tiny JSON with their count; `GET /readyz` answers 200. Nothing is decoded or read, so
its requests/s is what the web stack itself (uvicorn, Starlette's multipart parser, FastAPI's
routing and JSON answer) allows on this machine: the product's HTTP path can only approach it.
Served by uvicorn with the product's settings, one process.

    python bench/bare_service.py --port 8002
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastapi import FastAPI, File, UploadFile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also when run as a script
from bench.serving import add_readyz, serve


def create_app() -> FastAPI:
    app = FastAPI(title="Bare multipart endpoint (the ceiling)")

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008 (FastAPI's idiom)
        return {"bytes": len(await file.read())}

    add_readyz(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args(argv)
    serve(create_app(), args.host, args.port)


if __name__ == "__main__":
    main()
