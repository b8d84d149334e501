"""FastAPI dependencies: the service context, shared by every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from device.service.context import ServiceContext


async def get_context(request: Request) -> ServiceContext:
    # async: a plain def dependency would be run in a worker thread for every request
    return request.app.state.context


ContextDep = Annotated[ServiceContext, Depends(get_context)]
