"""/docs (Swagger UI) and /redoc from files in an installed package, so they render on an air-gapped machine.

FastAPI's own doc pages load swagger-ui-bundle.js, its CSS and redoc.standalone.js from a CDN: offline, /docs is a
blank page. The pinned `fastapi-offline` package ships those files (Swagger UI 5, which reads OpenAPI 3.1, and
ReDoc 2); here they are mounted under DOCS_ASSETS and the pages are FastAPI's own HTML pointed at them. The app is
built with `docs_url=None, redoc_url=None` and calls `add_offline_docs`.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS_ASSETS", "ASSETS_DIR", "CSP", "add_offline_docs"]

DOCS_ASSETS = "/docs-assets"  # URL prefix of the Swagger UI / ReDoc files
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, ...

# Swagger UI's defaults, minus the one that reaches out: validatorUrl=None stops the badge that asks
# validator.swagger.io about the spec.
_SWAGGER_PARAMETERS = {"validatorUrl": None, "displayRequestDuration": True}

# And a Content-Security-Policy that lets the pages load from this server only: ReDoc's sidebar, for one, always
# shows a "Redocly" logo from its CDN. (The pages' own bootstrap scripts are inline; ReDoc's search runs in a worker
# made from a blob:.)
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def _local_only(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = CSP
    return response


def add_offline_docs(app: FastAPI) -> None:
    """Mount the packaged assets and add GET /docs, /docs/oauth2-redirect and /redoc (none in the schema)."""
    if not (ASSETS_DIR / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"the Swagger UI files are missing from {ASSETS_DIR}: reinstall the pinned "
                           "fastapi-offline (`pip install -e .`)")
    app.mount(DOCS_ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def page(render, name: str, urls: dict[str, str], **options):
        """A doc page route: FastAPI's `render` with this app's URLs under the request's root path (behind a
        proxy that mounts the app under a prefix), and the self-only CSP."""
        async def route(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return _local_only(render(title=f"{app.title} - {name}", openapi_url=root + openapi_url,
                                      **{k: root + v for k, v in urls.items()}, **options))
        return route

    app.get("/docs", include_in_schema=False)(page(
        get_swagger_ui_html, "Swagger UI", {"oauth2_redirect_url": redirect_url,
                                            "swagger_js_url": f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                            "swagger_css_url": f"{DOCS_ASSETS}/swagger-ui.css",
                                            "swagger_favicon_url": f"{DOCS_ASSETS}/favicon.png"},
        swagger_ui_parameters=_SWAGGER_PARAMETERS))
    app.get("/redoc", include_in_schema=False)(page(
        get_redoc_html, "ReDoc", {"redoc_js_url": f"{DOCS_ASSETS}/redoc.standalone.js",
                                  "redoc_favicon_url": f"{DOCS_ASSETS}/favicon.png"},
        with_google_fonts=False))

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
