"""The page at GET /: served with nothing from other hosts, and in a real headless Chromium it shows
exactly what /tag and /embed answer for the same text (whatever model is in use), from the model
picked when the server holds several."""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.helpers import Server, metric, start_server

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, from `make .venv/.system`; no `playwright install`
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_KEY = "page-test-key"
SVG_NAMESPACE = '"http://www.w3.org/2000/svg"'
# The dependency view, read back: per sentence its words, and each arc's words and label.
READ_DEPS = """() => [...document.querySelectorAll("#deps-output svg")].map((svg) => ({
  words: [...svg.querySelectorAll(".dep-word")].map((w) => w.textContent),
  arcs: svg.querySelectorAll(".dep-arc").length,
  labels: [...svg.querySelectorAll(".dep-label")].map((l) => l.textContent).sort(),
  visible: svg.getBoundingClientRect().height > 0,
}))"""
SERVER_ENV = {"BIGRU_API_KEY": API_KEY}  # for the `server` fixture
TEXT = "Barack Obama visited Paris last week. He liked it."
SENTENCES = ["The cat sat on the mat.", "A kitten was sitting on the rug."]
# What the page shows, read back from its DOM: every word over its UPOS, and each entity mark.
READ_PAGE = """() => {
  const words = (root) => [...root.querySelectorAll(".tok")].map((t) => ({
    i: Number(t.dataset.i),
    text: t.querySelector(".w").textContent,
    upos: t.querySelector(".upos").textContent,
  }));
  const out = document.querySelector("#tag-output");
  return {
    tokens: words(out),
    entities: [...out.querySelectorAll("mark.ent")].map((m) => ({
      label: m.querySelector(".chip").textContent,
      tokens: words(m),
    })),
  };
}"""


def _check_dependencies(page: Any, expect: Any, tagged: dict[str, Any]) -> None:
    deps = page.locator("#deps")
    if "head" not in tagged["tokens"][0]:  # a model without a parser shows no view
        expect(deps).to_be_hidden()
        return
    expect(deps).to_be_visible()
    assert not page.locator("#deps-output svg").first.is_visible()  # closed until asked for
    page.get_by_text("Dependencies", exact=True).click()
    drawn = page.evaluate(READ_DEPS)
    tokens = tagged["tokens"]
    want = []
    for s in tagged["sentences"]:
        words = tokens[s["token_start"] : s["token_end"]]
        arcs = [t for i, t in enumerate(words, s["token_start"]) if t["head"] != i]
        labels = sorted(t["deprel"] for t in arcs)
        want.append({"words": [t["text"] for t in words], "arcs": len(arcs), "labels": labels,
                     "visible": True})  # fmt: skip
    assert drawn == want
    page.get_by_text("Dependencies", exact=True).click()
    assert not page.locator("#deps-output svg").first.is_visible()


def _keep_post(request: Any, posted: list[tuple[str, Any]]) -> None:
    """A POST the page sends, as (path, JSON body)."""
    if request.method == "POST":
        posted.append((urlsplit(request.url).path, request.post_data_json))


def test_page_is_html_with_no_outside_urls() -> None:
    client = TestClient(create_app(Settings()))  # no lifespan: the page needs no model
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page.text)
    assert links, page.text
    for link in links:
        if link.startswith("data:"):
            continue
        assert not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|//", link), f"not relative: {link}"
        assert client.get(f"/{link}").status_code == 200, link
    for asset in ("static/page.css", "static/page.js", "static/deps.js"):
        body = client.get(f"/{asset}").text.replace(SVG_NAMESPACE, "")  # a name, not a load
        assert not re.search(r"(?i)https?://|@import|url\(\s*['\"]?//", body), asset


@pytest.fixture(scope="module")
def sync_api() -> Any:
    """Playwright's sync API, or a skip (before any server starts); under CI a missing browser
    is a failure."""
    reason = None
    try:
        from playwright import sync_api as api
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        reason = f"no Chromium at {CHROMIUM} (make .venv/.system installs it)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return api


@pytest.mark.slow  # Chromium, and `python -m app` in a subprocess
def test_page_shows_what_the_api_returns(sync_api: Any, server: Server) -> None:
    expect = sync_api.expect
    auth = {"Authorization": f"Bearer {API_KEY}"}
    api = httpx.post(f"{server.base}/tag", json={"inputs": TEXT}, headers=auth, timeout=30)
    api.raise_for_status()
    [tagged] = api.json()
    vectors = httpx.post(
        f"{server.base}/embed",
        json={"inputs": SENTENCES, "normalize": True},
        headers=auth,
        timeout=30,
    ).json()
    cosine = sum(a * b for a, b in zip(*vectors, strict=True))

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 960, "height": 720})
            requested: list[str] = []
            problems: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(f"{server.base}/")

            # no key yet: the 401 is shown readably and the key field opens
            page.get_by_label("Text", exact=True).fill(TEXT)
            page.get_by_role("button", name="Tag").click()
            expect(page.locator("#tag-error")).to_contain_text("unauthorized")
            key = page.get_by_label("Key, if the server asks for one")
            expect(key).to_be_visible()
            key.fill(API_KEY)

            # with the key: Ctrl+Enter in the text submits; the page shows what /tag returned
            page.get_by_label("Text", exact=True).press("Control+Enter")
            expect(page.locator("#tag-status")).to_contain_text("word")
            expect(page.locator("#tag-error")).to_be_hidden()
            shown = page.evaluate(READ_PAGE)
            tokens = tagged["tokens"]
            assert tokens and all(t["upos"] for t in tokens)
            assert shown["tokens"] == [
                {"i": i, "text": t["text"], "upos": t["upos"]} for i, t in enumerate(tokens)
            ]
            assert shown["entities"] == [
                {"label": e["label"], "tokens": shown["tokens"][e["token_start"] : e["token_end"]]}
                for e in tagged["entities"]
            ]

            # scores: on hover, and from the keyboard (one tab stop, arrows move between words)
            tip = page.locator("#tip")
            page.locator("#tag-output .tok").nth(0).hover()
            expect(tip).to_contain_text(f"UPOS {tokens[0]['upos']}  {tokens[0]['upos_score']:.2f}")
            for head, shown_as in (("lemma", "lemma"), ("xpos", "XPOS"), ("feats", "feats")):
                if head in tokens[0]:  # the 0.5.0 heads, on hover too
                    expect(tip).to_contain_text(f"{shown_as} {tokens[0][head]}")
            # each sentence after the first starts with a mark
            starts = [s["token_start"] for s in tagged["sentences"]]
            expect(page.locator("#tag-output .sent")).to_have_count(len(starts) - 1)
            page.mouse.move(0, 0)
            page.get_by_role("button", name="Tag").focus()
            page.keyboard.press("Tab")
            page.keyboard.press("ArrowRight")
            expect(page.locator("#tag-output .tok").nth(1)).to_be_focused()
            expect(tip).to_contain_text(f"NER  {tokens[1]['ner']}  {tokens[1]['ner_score']:.2f}")
            page.keyboard.press("Escape")
            expect(tip).to_be_hidden()

            # dependencies, with a parser: hidden until asked for, then one drawing per sentence
            _check_dependencies(page, expect, tagged)

            # similarity: an API error is shown, then the cosine of the two embeddings
            page.get_by_label("First sentence").fill(SENTENCES[0])
            page.get_by_label("Second sentence").fill(" ")
            page.get_by_role("button", name="Compare").click()
            error = page.locator("#sim-error")
            expect(error).to_contain_text("The second sentence is empty or whitespace only")
            expect(error).to_contain_text("empty_input")
            page.get_by_label("Second sentence").fill(SENTENCES[1])
            page.get_by_role("button", name="Compare").click()
            value = page.locator("#sim-value")
            expect(value).to_have_text(f"{cosine:.3f}")
            assert float(value.get_attribute("data-value") or "nan") == pytest.approx(cosine)
            assert page.locator("#sim-meter").evaluate("m => m.value") == pytest.approx(cosine)
            expect(page.locator("#sim-reading")).to_contain_text(" of 5)")
            expect(page.locator("#sim-error")).to_be_hidden()
        finally:
            browser.close()

    assert not problems, problems
    assert requested and all(url.startswith(f"{server.base}/") for url in requested), requested


@pytest.mark.slow  # Chromium, and `python -m app` in a subprocess
def test_page_screenshot(sync_api: Any, server: Server, repo_root: Path) -> None:
    """The README's picture of the page, taken from the live page: TEXT tagged, a word's scores
    showing and two sentences compared. It goes to test-output/page.png, and to docs/page.png
    too with BIGRU_UPDATE_SCREENSHOT=1."""
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # the key as a header: the page's key field stays closed, as on a server without one
            context = browser.new_context(
                viewport={"width": 960, "height": 720},
                extra_http_headers={"Authorization": f"Bearer {API_KEY}"},
            )
            page = context.new_page()
            page.goto(f"{server.base}/")
            page.get_by_label("Text", exact=True).fill(TEXT)
            page.get_by_role("button", name="Tag").click()
            expect(page.locator("#tag-status")).to_contain_text("2 entities")
            page.get_by_label("First sentence").fill(SENTENCES[0])
            page.get_by_label("Second sentence").fill(SENTENCES[1])
            page.get_by_role("button", name="Compare").click()
            expect(page.locator("#sim-reading")).to_contain_text(" of 5)")
            # one model: /info read (the key is sent), and the picker stays hidden
            expect(page.locator("#model option")).to_have_count(1)
            expect(page.locator("#model-picker")).to_be_hidden()
            word = page.locator("#tag-output .tok").filter(has_text="visited")
            word.hover()
            expect(page.locator("#tip")).to_contain_text("lemma visit")
            out = repo_root / "test-output" / "page.png"
            out.parent.mkdir(exist_ok=True)
            out.unlink(missing_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()

    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width == 960 and height >= 720, (width, height)
    if os.environ.get("BIGRU_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(out, repo_root / "docs" / "page.png")


@pytest.mark.slow  # Chromium, and `python -m app` in a subprocess
def test_page_names_the_model_picked(sync_api: Any, model_dir: Path, tmp_path: Path) -> None:
    """Two models (the test model twice): the picker lists both, the default chosen; a model
    picked is named by every POST and answers what the page shows, and the similarity part
    shows only for a model that embeds."""
    expect = sync_api.expect
    models = tmp_path / "models"
    models.mkdir()
    for name in ("bigru-en", "second"):
        (models / name).symlink_to(model_dir.resolve(), target_is_directory=True)
    env = {"BIGRU_MODELS_DIR": str(models), "BIGRU_DEFAULT_MODEL": "bigru-en"}
    server = start_server(model_dir, tmp_path / "server.log", BIGRU_PROCESSES="1", **env)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 960, "height": 720})
                posted: list[tuple[str, Any]] = []
                problems: list[str] = []
                page.on("request", lambda r: _keep_post(r, posted))
                page.on("pageerror", lambda e: problems.append(str(e)))

                # `second` as a tagger only: the server's own /info for it, less the embed task
                def tagger_only(route: Any) -> None:
                    response = route.fetch()
                    info = response.json()
                    info["tasks"] = [t for t in info["tasks"] if t != "embed"]
                    route.fulfill(response=response, json=info)

                page.route("**/info?model=second", tagger_only)
                page.goto(f"{server.base}/")

                picker = page.get_by_label("Model", exact=True)
                expect(picker).to_be_visible()
                expect(picker.locator("option")).to_have_text(["bigru-en", "second"])
                expect(picker).to_have_value("bigru-en")
                similarity = page.locator('section[data-task="embed"]')
                expect(similarity).to_be_visible()

                picker.select_option("second")
                expect(similarity).to_be_hidden()
                page.get_by_label("Text", exact=True).fill(TEXT)
                page.get_by_role("button", name="Tag").click()
                expect(page.locator("#tag-status")).to_contain_text("word")
                expect(page.locator("#tag-error")).to_be_hidden()
                shown = page.evaluate(READ_PAGE)

                picker.select_option("bigru-en")
                expect(similarity).to_be_visible()
                page.get_by_role("button", name="Compare").click()
                expect(page.locator("#sim-reading")).to_contain_text(" of 5)")
            finally:
                browser.close()

        assert not problems, problems
        assert [(path, body["model"]) for path, body in posted] == [
            ("/tag", "second"),
            ("/embed", "bigru-en"),
        ]
        tagged = 'bigru_requests_total{model="second",route="/tag",status="200"}'
        assert metric(server.base, tagged) == 1
        api = httpx.post(f"{server.base}/tag", json={"inputs": TEXT, "model": "second"}, timeout=30)
        [answer] = api.raise_for_status().json()
        assert shown["tokens"] == [
            {"i": i, "text": t["text"], "upos": t["upos"]} for i, t in enumerate(answer["tokens"])
        ]
        assert [e["label"] for e in shown["entities"]] == [e["label"] for e in answer["entities"]]
    finally:
        status = server.stop()
    assert status == 0, server.log.read_text()[-3000:]


@pytest.mark.slow  # Chromium, and `python -m app` in a subprocess
def test_docs_render_from_this_server_alone(sync_api: Any, server: Server) -> None:
    """/docs (Swagger UI) renders every route, loading nothing from another host: its files
    come from this server, and its Content-Security-Policy would block anything else."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {API_KEY}"})
            page = context.new_page()
            requested: list[str] = []
            problems: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(f"{server.base}/docs")
            sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text("bigru-serve")
            shown = page.locator(".opblock-summary-path")
            sync_api.expect(shown.first).to_be_visible()
            paths = set(shown.all_inner_texts())
            assert {"/tag", "/embed", "/v1/embeddings", "/pipeline/token-classification"} <= paths
        finally:
            browser.close()
    assert not problems, problems
    assert requested and all(url.startswith(f"{server.base}/") for url in requested), requested
