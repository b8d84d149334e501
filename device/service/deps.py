"""FastAPI dependencies: the service context, shared by every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from device.service.context import ServiceContext


def get_context(request: Request) -> ServiceContext:
    return request.app.state.context


ContextDep = Annotated[ServiceContext, Depends(get_context)]
