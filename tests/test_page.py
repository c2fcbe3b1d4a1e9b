"""The page at `/` and GET /schema: TestClient checks, then the page driven in headless Chromium (selenium).

The browser tests run a real uvicorn server (in a thread, on a port the OS picks on 127.0.0.1) over the tiny trained
model (conftest.tiny_model), so that explanations are real. Without chromium / chromedriver / selenium they skip
with the reason, unless ITEMTOWER_REQUIRE_BROWSER=1 (set by .ci/run, which installs them): then they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient

from fakes import FakeEmbedder, catalog
from itemtower.index import FaissIndex
from itemtower.serve.app import create_app
from itemtower.serve.settings import Settings

API_KEY = "page-test-key"
IMAGE = "/docs-assets/favicon.png"  # a path this server serves: the image really loads, offline


def fake_client(tmp_path, extra_items=()) -> TestClient:
    embedder = FakeEmbedder()
    items = catalog() + list(extra_items)
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    return TestClient(create_app(Settings(model_dir=tmp_path / "unused"), embedder=embedder, index=index))


# ---------------------------------------------------------------------------------------------- no browser


def test_page_and_its_assets_are_served(tmp_path):
    """/ is the HTML page (not in the OpenAPI schema); its script and style answer 200 from the package."""
    with fake_client(tmp_path) as c:
        r = c.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert 'src="static/page.js"' in r.text and 'href="static/page.css"' in r.text
        refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert refs and all(u == "data:," or (":" not in u and not u.startswith("/")) for u in refs), refs  # relative
        js, css = c.get("/static/page.js"), c.get("/static/page.css")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "X-API-Key" in js.text
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]
        assert "/" not in c.get("/openapi.json").json()["paths"]
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "connect-src 'self'" in csp and "unsafe" not in csp


def test_schema_lists_closed_vocabularies_and_indexed_values_of_open_fields(tmp_path):
    """A closed field lists its vocabulary; the open `brand` lists the values indexed items hold, sorted, and a
    new item's value shows up at once (the cache is keyed on the index size)."""
    extra = [{"id": f"b{i}", "title": "cotton shirt", "std": {"brand": [b]}} for i, b in enumerate(["Puma", "Acme"])]
    with fake_client(tmp_path, extra) as c:
        body = c.get("/schema").json()
        assert c.put("/items/b9", json={"title": "wool coat", "std": {"brand": "Zed"}}).status_code == 201
        after = {f["name"]: f for f in c.get("/schema").json()["std_fields"]}
    assert after["brand"]["values"] == ["Acme", "Puma", "Zed"]
    fields = {f["name"]: f for f in body["std_fields"]}
    assert fields["color"] == {"name": "color", "values": ["Black", "White", "Red", "Blue"], "closed": True}
    assert fields["brand"] == {"name": "brand", "values": ["Acme", "Puma"], "closed": False}
    assert body["re_fields"] == ["color", "specification.metadata"]
    assert body["n_items"] == 8


def test_schema_without_a_model_is_503_with_the_how_to(tmp_path):
    """No model: 503 in the error body shape, saying how to train one (the page shows this detail)."""
    with TestClient(create_app(Settings(model_dir=tmp_path / "none"))) as c:
        r = c.get("/schema")
    assert r.status_code == 503
    assert "itemtower train" in r.json()["detail"]


# ---------------------------------------------------------------------------------------------- the browser


def _browser_or_skip() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or skip (fail under ITEMTOWER_REQUIRE_BROWSER=1) saying what is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        reason = (f"the browser test needs {', '.join(missing)}: `apt-get install -y chromium chromium-driver` "
                  "(Debian) and `pip install -e '.[test]'`")
        if os.environ.get("ITEMTOWER_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (ITEMTOWER_REQUIRE_BROWSER=1: this run must not skip it)")
        pytest.skip(reason)
    return chromium, driver


def page_items(items: list[dict]) -> list[dict]:
    """The tiny catalog: two thirds with a served image, a third with a `javascript:` one that must never render."""
    return [{**it, "image": "javascript:alert(1)" if i % 3 == 1 else IMAGE} for i, it in enumerate(items)]


@pytest.fixture(scope="module")
def server(tiny_model):
    """(base URL, items by id): uvicorn in a thread on a free port, stopped (and joined) at the end."""
    from itemtower.artifacts import Embedder

    model_dir, items = tiny_model
    embedder = Embedder.load(model_dir)
    items = page_items(items)
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    app = create_app(Settings(model_dir=model_dir / "unused", api_key=API_KEY), embedder=embedder, index=index)
    with _serving(app) as base:
        yield base, {it["id"]: it for it in items}


@contextlib.contextmanager
def _serving(app):
    """The app under uvicorn in a thread on a free port: its base URL; stopped (and joined) at the end."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            srv.should_exit = True
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port} within 15 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a fresh profile and nothing that phones home (the network here is closed)."""
    chromium, chromedriver = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    # Both paths given: selenium skips Selenium Manager, which would try to download a driver.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP refusals
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, condition, what: str, seconds: float = 10):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds).until(lambda d: condition(d))
    except TimeoutException:
        raise AssertionError(f"timed out after {seconds} s waiting for {what}; page text: "
                             f"{driver.find_element('tag name', 'body').text[:800]!r}") from None


def css(driver, selector):
    return driver.find_elements("css selector", selector)


def open_page(driver, base):
    driver.get(base + "/")
    wait(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true", "the script")
    wait(driver, lambda d: css(d, "#f-season option")[1:], "the filter dropdowns from /schema")


def shown(driver, what: str) -> bool:
    """The results of the run labelled `what` are on the page (not "...: searching...", which the page shows while
    the previous run's cards are still in the grid)."""
    info = css(driver, "#results-info")[0].text
    return info.startswith(what) and "searching..." not in info


def search_id(driver, item_id):
    box = css(driver, "#q-id")[0]
    box.clear()
    box.send_keys(item_id)
    css(driver, "#btn-similar")[0].click()
    # Wait for this search's own results: the grid may still hold the previous search's cards, which the page
    # replaces once the response is in (reading those would race with the replacement).
    return wait(driver, lambda d: shown(d, f"similar to {item_id}:") or css(d, "#error:not([hidden])"),
                f"results for {item_id}")


def card_fields(card) -> dict[str, str]:
    dts, dds = card.find_elements("css selector", "dt"), card.find_elements("css selector", "dd")
    return {dt.text: dd.text for dt, dd in zip(dts, dds)}


def assert_only_local_requests(driver, base):
    """Every resource the page asked for is on this server, or was refused by its Content-Security-Policy (the
    console says so) before it left: ReDoc's sidebar always asks for a logo on its CDN."""
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    console = " ".join(e["message"] for e in driver.get_log("browser"))
    refused = set(re.findall(r"(?:Refused to load|Loading) the \w+ '([^']+)' (?:because it )?violates the "
                             r"following Content Security Policy", console))
    outside = [u for u in urls if not u.startswith(base + "/")]
    assert urls and set(outside) <= refused, (outside, refused)


def test_browser_search_by_id_shows_cards(browser, server):
    """Search by id: a grid of k cards (the query left out) with title, attributes and a score, best first; an
    image only where the item has an http(s) or served one, and it loads; nothing fetched from outside."""
    base, items = server
    open_page(browser, base)
    options = [o.text for o in css(browser, "#f-season option")]
    assert options == ["any", "spring&fall", "summer", "winter"]
    search_id(browser, "it0")
    cards = css(browser, "#grid .card")
    ids = [c.get_attribute("data-id") for c in cards]
    assert len(cards) == 10 and "it0" not in ids and len(set(ids)) == 10
    scores = [float(c.find_element("css selector", ".score").text) for c in cards]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
    for c, item_id in zip(cards, ids):
        assert c.find_element("css selector", ".title").text == items[item_id]["title"]
        assert card_fields(c)["category"] == ", ".join(items[item_id]["std"]["category"])
        imgs = c.find_elements("css selector", "img")
        assert len(imgs) == (1 if items[item_id].get("image") == IMAGE else 0), item_id  # never javascript:
    assert any(items[i].get("image") == IMAGE for i in ids), "the catalog puts images on two thirds of the items"
    shown = browser.execute_script("return ['javascript:alert(1)', '//elsewhere/x.png', 'data:image/png;base64,AA',"
                                   " '/img/a.png', 'https://shop.example/a.jpg', 42].map(s => imageOf({image: s}))")
    assert shown == [None, None, None, "/img/a.png", "https://shop.example/a.jpg", None]
    wait(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"),
        "the images to load")
    assert_only_local_requests(browser, base)


def test_browser_filters_and_word_search(browser, server):
    """A dropdown choice filters the results; a word search shows cards too."""
    from selenium.webdriver.support.ui import Select

    base, items = server
    open_page(browser, base)
    Select(css(browser, "#f-season")[0]).select_by_visible_text("winter")
    search_id(browser, "it1")
    cards = css(browser, "#grid .card")
    assert cards and all(card_fields(c)["season"] == "winter" for c in cards)
    Select(css(browser, "#f-season")[0]).select_by_visible_text("any")
    box = css(browser, "#q-words")[0]
    box.send_keys("wool linen")
    css(browser, "#btn-search")[0].click()
    wait(browser, lambda d: shown(d, 'search "wool linen":') and css(d, "#grid .card"), "word results")
    assert len(css(browser, "#grid .card")) == 10


def card_ids(driver) -> list[str]:
    return [c.get_attribute("data-id") for c in css(driver, "#grid .card")]


def test_browser_pages_diversity_and_variants(browser, server):
    """Next/previous page through the ranking; "one per product group" leaves one item per group; Variants on a
    card lists the rest of its group."""
    base, items = server
    open_page(browser, base)
    search_id(browser, "it0")
    first = card_ids(browser)
    css(browser, "#btn-next")[0].click()
    wait(browser, lambda d: shown(d, "similar to it0, from #11:"), "page 2")
    second = card_ids(browser)
    assert len(second) == 10 and not set(first) & set(second)
    css(browser, "#btn-prev")[0].click()
    wait(browser, lambda d: shown(d, "similar to it0:"), "page 1 again")
    assert card_ids(browser) == first

    css(browser, "#q-per-group")[0].click()
    search_id(browser, "it4")
    groups = [items[i]["group"] for i in card_ids(browser)]
    assert len(groups) == 10 and len(set(groups)) == 10, groups
    css(browser, "#q-per-group")[0].click()

    card = css(browser, "#grid .card")[0]
    item_id = card.get_attribute("data-id")
    card.find_element("css selector", "button.variants").click()
    wait(browser, lambda d: shown(d, f"variants of {item_id}:"), "the variants")
    variants = card_ids(browser)
    expected = {i for i, it in items.items() if it.get("group") == items[item_id]["group"]} - {item_id}
    assert variants and set(variants) == expected


def test_browser_explanation_on_click(browser, server):
    """Explain on a card opens the per-field explanation: each STD field with the tokens it read."""
    base, items = server
    open_page(browser, base)
    search_id(browser, "it2")
    first = css(browser, "#grid .card")[0]
    first_id = first.get_attribute("data-id")
    first.find_element("css selector", "button.explain").click()
    wait(browser, lambda d: css(d, "#explain-body .field"), "the explanation")
    assert css(browser, "#explain")[0].is_displayed()
    assert css(browser, "#explain-id")[0].text == first_id
    fields = [f.find_element("css selector", "h3").text for f in css(browser, "#explain-body .field")]
    assert any(f.startswith("category = ") for f in fields), fields
    assert css(browser, "#explain-body .tokens li"), "no tokens listed"
    widths = [b.value_of_css_property("width") for b in css(browser, "#explain-body .bar")]
    assert widths and all(w.endswith("px") and float(w[:-2]) > 0 for w in widths), widths
    assert not [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    css(browser, "#explain-close")[0].click()
    assert not css(browser, "#explain")[0].is_displayed()


def test_browser_shows_api_errors(browser, server):
    """An unknown id: the API's 404 detail is shown to the user, and no stale cards remain."""
    base, _ = server
    open_page(browser, base)
    search_id(browser, "no-such-item")
    error = css(browser, "#error")[0]
    assert error.is_displayed() and "404" in error.text and "no item with id 'no-such-item'" in error.text
    assert not css(browser, "#grid .card")


def test_browser_add_item_with_the_key(browser, server):
    """Add an item from the form: refused (403 shown) with a wrong key, added with the right one, then searchable."""
    base, _ = server
    open_page(browser, base)
    item = {"title": "wool cardigan from the page", "std": {"category": ["01outer_04cardigan"], "color": ["Black"]},
            "image": IMAGE}
    css(browser, "#e-id")[0].send_keys("page-new")
    body = css(browser, "#e-body")[0]
    body.clear()
    body.send_keys(json.dumps(item))
    key = css(browser, "#e-key")[0]
    key.send_keys("wrong-key")
    css(browser, "#btn-save")[0].click()
    result = lambda d: css(d, "#edit-result")[0].text  # noqa: E731
    wait(browser, lambda d: "403" in result(d), "the 403 for a wrong key")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{base}/items/page-new", timeout=5)

    key.clear()
    key.send_keys(API_KEY)
    css(browser, "#btn-save")[0].click()
    wait(browser, lambda d: "added page-new" in result(d), "the confirmation")
    with urllib.request.urlopen(f"{base}/items/page-new", timeout=5) as r:
        assert json.load(r)["title"] == item["title"]
    search_id(browser, "page-new")
    assert len(css(browser, "#grid .card")) == 10

    # Edit on a card loads that item into the form.
    card = css(browser, "#grid .card")[0]
    card.find_element("css selector", "button.edit").click()
    wait(browser, lambda d: css(d, "#e-id")[0].get_attribute("value") == card.get_attribute("data-id"), "the edit form")
    assert json.loads(css(browser, "#e-body")[0].get_attribute("value"))["title"] == card.find_element(
        "css selector", ".title").text


def test_browser_swagger_ui_renders_offline(browser, server):
    """/docs renders the operations from the packaged Swagger UI, and every request it makes stays on this server."""
    base, _ = server
    browser.get(base + "/docs")
    wait(browser, lambda d: len(css(d, ".opblock")) >= 8, "Swagger UI's operations", seconds=15)
    paths = {e.text.replace("\u200b", "") for e in css(browser, ".opblock-summary-path")}
    assert {"/items/{item_id}/similar", "/search", "/schema", "/health"} <= paths, paths
    assert_only_local_requests(browser, base)


def test_browser_redoc_renders_offline(browser, server):
    """/redoc renders the operations from the packaged ReDoc bundle, with no request leaving this server."""
    base, _ = server
    browser.get(base + "/redoc")
    wait(browser, lambda d: "Search by a partial item" in d.find_element("tag name", "body").text,
         "ReDoc's operations", seconds=20)
    assert_only_local_requests(browser, base)


@pytest.fixture(scope="module")
def photo_server(tiny_model, tmp_path_factory):
    """(base URL, items by id, image root): items whose `image` is a file in ITEMTOWER_IMAGE_ROOT, named by a
    relative path (every 3rd item) or an absolute one (every 3rd + 1), the rest without a photo."""
    from PIL import Image

    from itemtower.artifacts import Embedder

    model_dir, items = tiny_model
    root = tmp_path_factory.mktemp("photo_root")
    for i, colour in enumerate([(200, 30, 40), (40, 90, 190)]):
        Image.new("RGB", (32, 32), colour).save(root / f"p{i}.png")
    items = [{**it, "image": "p0.png"} if i % 3 == 0 else {**it, "image": str(root / "p1.png")} if i % 3 == 1
             else dict(it) for i, it in enumerate(items)]
    embedder = Embedder.load(model_dir)
    index = FaissIndex(embedder.dim)
    index.upsert([it["id"] for it in items], embedder.embed(items), items)
    app = create_app(Settings(model_dir=model_dir / "unused", image_root=root), embedder=embedder, index=index)
    with _serving(app) as base:
        yield base, {it["id"]: it for it in items}, root


def test_browser_shows_photos_from_the_image_root(browser, photo_server):
    """A relative photo path loads through GET /photos/{id}; an absolute path inside the root falls back to it."""
    base, items, root = photo_server
    open_page(browser, base)
    search_id(browser, "it0")
    cards = css(browser, "#grid .card")
    assert cards
    wait(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"),
        "the photos to load")
    for c in cards:
        item = items[c.get_attribute("data-id")]
        imgs = c.find_elements("css selector", "img")
        assert len(imgs) == (1 if "image" in item else 0)
        if imgs:
            assert imgs[0].get_attribute("currentSrc").endswith("/photos/" + item["id"])
    assert_only_local_requests(browser, base)
