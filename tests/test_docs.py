"""/docs and /redoc work offline: their HTML points only at this server, and those files are served (no CDN)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from fakes import FakeEmbedder
from itemtower.serve.app import create_app
from itemtower.serve.docs import DOCS_ASSETS
from itemtower.serve.settings import Settings


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(Settings(model_dir=tmp_path / "unused"), embedder=FakeEmbedder())) as c:
        yield c


def asset_urls(html: str) -> list[str]:
    """Every src= / href= / spec-url= in the page, and the OpenAPI url the script is given."""
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


@pytest.mark.parametrize("page, expected", [
    ("/docs", {f"{DOCS_ASSETS}/swagger-ui-bundle.js", f"{DOCS_ASSETS}/swagger-ui.css", "/openapi.json"}),
    ("/redoc", {f"{DOCS_ASSETS}/redoc.standalone.js", "/openapi.json"}),
])
def test_doc_pages_reference_only_local_assets(client, page, expected):
    """No URL in the HTML leaves the server (no scheme, no //host), and the expected bundle is among them."""
    html = client.get(page).text
    urls = asset_urls(html)
    assert expected <= set(urls), urls
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "cdn." not in html and "fonts.googleapis" not in html
    assert "validator.swagger.io" not in html


@pytest.mark.parametrize("name, content_type, marker", [
    ("swagger-ui-bundle.js", "javascript", "SwaggerUIBundle"),
    ("swagger-ui.css", "text/css", ".swagger-ui"),
    ("redoc.standalone.js", "javascript", "Redoc"),
])
def test_doc_assets_are_served(client, name, content_type, marker):
    """Each asset answers 200 with its type and is the real bundle (not an error page)."""
    r = client.get(f"{DOCS_ASSETS}/{name}")
    assert r.status_code == 200
    assert content_type in r.headers["content-type"]
    assert marker in r.text[:200_000]
    assert len(r.content) > 100_000


def test_docs_keep_openapi_and_stay_out_of_it(client):
    """/openapi.json is still there; the doc pages, their assets and the HTML page are not operations in it."""
    paths = client.get("/openapi.json").json()["paths"]
    assert "/items/{item_id}/similar" in paths
    assert not {"/docs", "/redoc", "/", "/docs/oauth2-redirect"} & set(paths)
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_swagger_ui_validator_is_off_in_the_page(client):
    """Swagger UI would otherwise send the spec's URL to validator.swagger.io (a request that leaves the box)."""
    assert '"validatorUrl": null' in client.get("/docs").text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_forbid_loading_from_elsewhere(client, page):
    """A Content-Security-Policy keeps the browser on this server (ReDoc's sidebar logo would come from a CDN)."""
    csp = client.get(page).headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' data:" in csp and "connect-src 'self'" in csp
    assert "http" not in csp and "*" not in csp
