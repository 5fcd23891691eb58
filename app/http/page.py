"""The pages: GET / (a page to try the model, its script and style under /static), and the API's
documentation, /docs (Swagger UI, its files under /swagger-ui) and /openapi.json. Each page's
Content-Security-Policy lets it load only this server's files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page loads only its own files and talks only to this server; the browser enforces it.
_PAGE_CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
# Swagger UI: FastAPI's page starts it from an inline script, and it sets inline styles.
_DOCS_CSP = _PAGE_CSP + "; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"


def mount_files(app: FastAPI) -> None:
    """The pages' files: the page's own, and Swagger UI's from the pinned swagger-ui-bundle-v2,
    so that /docs works offline."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")


async def index() -> FileResponse:
    """A page to try the model: text in, entities and UPOS out; similarity of two sentences."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": _PAGE_CSP})


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


async def docs(request: Request) -> HTMLResponse:
    """Swagger UI with the schema inline (`spec` wins over `url`): a page fetched with the key
    needs no second, keyless request for the schema. No validator badge from swagger.io."""
    html = get_swagger_ui_html(
        openapi_url="openapi.json",
        title="bigru-serve",
        swagger_js_url="swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="swagger-ui/swagger-ui.css",
        swagger_favicon_url="swagger-ui/favicon-32x32.png",
        swagger_ui_parameters={"spec": request.app.openapi(), "validatorUrl": None},
    )
    html.headers["Content-Security-Policy"] = _DOCS_CSP
    return html
