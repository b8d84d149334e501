"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from device.service.deps import ContextDep
from device.service.schemas import Readiness

router = APIRouter(tags=["health"])


# HEAD too, as uptime monitors probe: for every GET route (middleware.HeadAsGet).
@router.get("/healthz", summary="The process is alive (never needs the token)")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "the configured camera is not usable"}},
    summary="Model loaded and camera usable (or explicitly disabled)",
)
async def readyz(context: ContextDep) -> JSONResponse:
    camera = context.camera
    # The model is loaded before the socket opens, so only the camera can make us unready.
    # With --camera none the service is deliberately upload-only, and that counts as ready.
    reason = None if camera.ready or not camera.enabled else camera.reason
    body = Readiness(
        ready=reason is None,
        reason=reason,
        model={"name": context.model.name, "sha256": context.model.sha256},
        camera=camera.status(),
        # A broker that is down is shown, never a reason to be unready: readings still work.
        **context.watch_status(),
    )
    return JSONResponse(body.model_dump(), status_code=200 if reason is None else 503)
