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

import uvicorn
from fastapi import FastAPI, File, UploadFile


def create_app() -> FastAPI:
    app = FastAPI(title="Bare multipart endpoint (the ceiling)")

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008 (FastAPI's idiom)
        return {"bytes": len(await file.read())}

    @app.get("/readyz")
    async def readyz() -> dict:
        return {"ready": True}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args(argv)
    # The product's uvicorn settings: one process, no access log, no server header.
    uvicorn.run(create_app(), host=args.host, port=args.port, workers=1, access_log=False,
                server_header=False, log_level="warning")


if __name__ == "__main__":
    main()
