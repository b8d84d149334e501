"""Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from device.service.deps import ContextDep
from device.service.metrics import PROMETHEUS_CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(context: ContextDep) -> Response:
    return Response(context.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)
