"""The loaded model and its sidecar."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from device.service.deps import ContextDep

router = APIRouter(tags=["model"])


@router.get("/model", summary="The loaded model: name, sha256, runtime and its full sidecar")
async def model_info(context: ContextDep) -> dict[str, Any]:
    model = context.model
    return {
        "name": model.name,
        "sha256": model.sha256,
        "runtime": model.runtime,
        "threads": model.threads,
        "sidecar": model.sidecar.raw,
    }
