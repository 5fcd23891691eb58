"""The documented FastAPI app: every route of the table with its OpenAPI document, the page's
files and Swagger UI's, and the error handlers. Requests the lean path leaves (a body not sent
as JSON, and every other route) are answered here."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import Depends, FastAPI, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from app.config import Settings
from app.http.connection import Stream, StreamResponse
from app.http.errors import install_error_handlers
from app.http.handlers import STATIC_DIR, authorized
from app.http.routes import ROUTES, Route
from app.metrics import Metrics

_JSON = "application/json"


def documented_app(
    settings: Settings,
    metrics: Metrics,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> FastAPI:
    """The FastAPI app; `app.state.engine` is None until `lifespan` sets it."""
    # /docs and /openapi.json are routes of the table, behind the API key like the rest
    app = FastAPI(
        title="bigru-serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.engine = None
    for route in ROUTES:
        app.add_api_route(
            route.path,
            _endpoint(route),
            methods=[route.method],
            response_model=route.response_model,
            responses=route.responses,
            summary=route.summary,
            dependencies=[Depends(authorized)] if route.guarded else None,
            include_in_schema=route.documented,
            **({"response_class": route.response_class} if route.response_class else {}),
        )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Swagger UI's files, from the pinned swagger-ui-bundle-v2: /docs works offline
    app.mount("/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    install_error_handlers(app)
    return app


def _endpoint(route: Route) -> Callable[..., Awaitable[Any]]:
    """The handler, as FastAPI calls it: a lean route's handler gives the JSON body's bytes or a
    `Stream`, which become a response here (FastAPI reads the parameters through `__wrapped__`)."""
    if not route.lean:
        return route.handler
    handler = route.handler

    @functools.wraps(handler)
    async def endpoint(**params: Any) -> Response:
        content = await handler(**params)
        if isinstance(content, Stream):
            return StreamResponse(content)
        return Response(content, media_type=_JSON)

    return endpoint
