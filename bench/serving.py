"""What the comparison services share: `GET /readyz` and the product's uvicorn settings."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI


def add_readyz(app: FastAPI) -> None:
    """`GET /readyz` answering 200, which bench/servers.py waits for."""

    @app.get("/readyz")
    async def readyz() -> dict:
        return {"ready": True}


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve `app` with the product's uvicorn settings: one process, asyncio's loop, the HTTP
    parser uvicorn picks (httptools where installed), no access log, no server header."""
    uvicorn.run(app, host=host, port=port, workers=1, access_log=False, server_header=False,
                loop="asyncio", log_level="warning")
