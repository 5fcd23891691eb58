"""The FastAPI app: the GET routes of the table, the pages' files, and the OpenAPI document,
which declares every route of the table. The POST routes are the dispatcher's
(app/http/dispatcher.py): it answers them before a request reaches this app, so here each is
declared only, its body model and name read by the document, and a method the route does not
take is a 405 as for every route."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import Depends, FastAPI

from app.config import Settings
from app.http import page
from app.http.errors import install_error_handlers
from app.http.guards import authorized
from app.http.routes import ROUTES, Route
from app.metrics import Metrics


def documented_app(
    settings: Settings,
    metrics: Metrics,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> FastAPI:
    """The FastAPI app; `app.state.models` is None until `lifespan` sets it."""
    # /docs and /openapi.json are routes of the table, behind the API key like the rest
    app = FastAPI(
        title="bigru-serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.models = None
    for route in ROUTES:
        app.add_api_route(
            route.path,
            route.handler if route.method == "GET" else _declared(route),
            methods=[route.method],
            response_model=route.response_model,
            responses=route.responses,
            summary=route.summary,
            dependencies=[Depends(authorized)] if route.guarded else None,
            include_in_schema=route.documented,
            **({"response_class": route.response_class} if route.response_class else {}),
        )
    page.mount_files(app)
    install_error_handlers(app)
    return app


def _declared(route: Route) -> Callable[..., Awaitable[Any]]:
    """A POST route as the OpenAPI document reads it: its handler's name and docstring, and its
    body model, the handler's `body`. The dispatcher answers every POST to the route, so this
    app never calls it."""
    handler = route.handler
    body = inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=route.body)

    async def declared(**params: Any) -> Any:
        raise RuntimeError(f"POST {route.path} is answered by the dispatcher")

    declared.__name__ = declared.__qualname__ = handler.__name__
    declared.__doc__ = handler.__doc__
    declared.__signature__ = inspect.Signature([body])  # type: ignore[attr-defined]
    return declared
