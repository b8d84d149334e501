"""FastAPI dependencies: the service context, shared by every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from device.service.context import ServiceContext


def context_of(request: Request) -> ServiceContext:
    """The context, for a route too hot to pay for dependency solving (POST /predict: FastAPI
    spends ~80 µs per request on one `Depends`, a quarter of what the bare multipart ceiling
    spends on its whole request)."""
    return request.app.state.context


async def get_context(request: Request) -> ServiceContext:
    # async: a plain def dependency would be run in a worker thread for every request
    return context_of(request)


ContextDep = Annotated[ServiceContext, Depends(get_context)]
