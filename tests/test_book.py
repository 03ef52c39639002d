"""The book: cheap checks of its sources, then the built HTML as a reader's browser sees it.

Source checks (no marker, run with the unit tests): every chapter notebook is in the table of contents,
has an unnumbered title, installs optimlab on Colab in its first cell, carries no widget state, and hides
its solutions.

Browser checks (marker ``browser``; ``make browser`` runs them after ``make book``): Debian's Chromium,
driven by Playwright through ``executable_path``, visits every page of ``_build/html`` served on 127.0.0.1.
The browser resolves no host but 127.0.0.1, so a request that would leave the machine fails and counts as a
failure: a page that passes works offline.
Each page must load with no failed request and no page error, typeset its math, show its figures, start
with its solutions collapsed, and every kernel-free slider must change its picture when moved. Every
internal link, anchors included, must lead somewhere.

Without Chromium or without a built book these tests skip with the reason, except when ``CI`` is set: then
they fail. ``OPTIMLAB_BOOK_DIR`` points the tests at another book source tree (its ``_build/html``);
``OPTIMLAB_SCREENSHOTS=DIR`` saves a full-page screenshot of every page there.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the source checks run without playwright; the browser fixture says what is missing
    PlaywrightTimeout = TimeoutError

REPO = Path(__file__).resolve().parents[1]
BOOK = Path(os.environ.get("OPTIMLAB_BOOK_DIR", REPO)).resolve()
HTML = BOOK / "_build" / "html"
CHAPTERS = BOOK / "chapters"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = bool(os.environ.get("CI"))
SCREENSHOTS = os.environ.get("OPTIMLAB_SCREENSHOTS")

# No page error is allowed (sphinx-thebe's double declaration of THEBE_JS_URL went with "Live code").
KNOWN_PAGE_ERRORS: set[str] = set()

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_CODE = re.compile(r"\b(ipywidgets|optimlab\.widgets|widgets\.\w+\(|slider2?\()")
# The playground (optimlab.widgets.playground) is a widget without ipywidgets: its lines do not count as widget code.
PLAYGROUND_CODE = re.compile(r"^.*\bplayground\b.*$", re.M)
PAGE_TIMEOUT_MS = 30_000
WIDGET_TIMEOUT_MS = 15_000


def _unavailable(reason: str):
    """Skip on a reader's machine; fail in CI, where the browser tests must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------------------
# Sources


def _toc_files() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def _chapter_notebooks() -> list[Path]:
    return sorted(CHAPTERS.glob("*.ipynb")) if CHAPTERS.is_dir() else []


@functools.cache
def _notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def test_toc_lists_every_chapter_and_only_existing_files():
    listed = _toc_files()
    missing = [f for f in listed if not any((BOOK / f).with_suffix(s).exists() for s in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    in_toc = {str(Path(f).with_suffix("")) for f in listed}
    chapters = sorted(CHAPTERS.glob("*.ipynb")) + sorted(CHAPTERS.glob("*.md")) if CHAPTERS.is_dir() else []
    orphans = [str(p.relative_to(BOOK)) for p in chapters if str(p.relative_to(BOOK).with_suffix("")) not in in_toc]
    assert not orphans, f"chapters missing from _toc.yml (add one line `- file: ...` each): {orphans}"


SOLUTION_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{solution(?:-start)?\}[^\n]*\n(?P<options>(?::[^\n]*\n)*)", re.M
)


@pytest.mark.parametrize("path", _chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_notebook_conventions(path: Path):
    nb = _notebook(path)
    problems = []

    if "widgets" in nb.get("metadata", {}):
        problems.append("widget state is stored in the notebook's metadata (run `make execute` to strip it)")

    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    title = _source(markdown[0]).lstrip().splitlines()[0] if markdown else ""
    if not title.startswith("# "):
        problems.append("the first markdown cell must start with the chapter's title (`# Title`)")
    elif re.match(r"#\s+\d+(\.\d+)*\.?\s", title):
        problems.append(f"the table of contents numbers the chapters: drop the number from the title {title!r}")

    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = _source(code[0]) if code else ""
    if not (re.search(r"import optimlab", first) and "except ImportError" in first and re.search(r"\bpip\b", first)):
        problems.append("the first code cell must install optimlab when it is missing (see CONTRIBUTING.md)")
    elif "remove-cell" not in _tags(code[0]):
        problems.append("the Colab install cell must be tagged remove-cell")

    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for match in SOLUTION_DIRECTIVE.finditer(_source(cell) + "\n"):
            if not re.search(r"^:class:.*\bdropdown\b", match["options"], re.M):
                problems.append(f"a solution is not collapsed (add `:class: dropdown`): {match[0].strip()!r}")

    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------------------------------------
# The built book in a browser


def _html_pages() -> list[str]:
    """Every HTML page of the built book, as paths relative to its root."""
    if not HTML.is_dir():
        return []
    skip = ("_static/", "_sources/", "_images/", "reports/")
    return sorted(
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if not p.relative_to(HTML).as_posix().startswith(skip)
    )


def _is_redirect(page: str) -> bool:
    head = (HTML / page).read_text(errors="replace")[:2000]
    return 'http-equiv="refresh"' in head.lower()


# Pages with content; the book's index.html only redirects to the root page (test_index_redirects checks it).
PAGES = [page for page in _html_pages() if not _is_redirect(page)] or ["(no built book)"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature is the base class's
        pass


@pytest.fixture(scope="session")
def built_book() -> Path:
    if not (HTML / "index.html").exists():
        _unavailable(f"no built book at {HTML}: run `make book` first")
    return HTML


@pytest.fixture(scope="session")
def server(built_book):
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


# The `browser` fixture (Chromium through Playwright) is in tests/conftest.py, shared with test_jupyterlab.py.


@dataclass(repr=False)
class PageVisit:
    """What a reader's browser met on one page."""

    url: str
    failed_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    math: int = 0
    math_typeset: int = 0
    raw_widget_math: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    sliders: int = 0
    widget_errors: int = 0
    unrendered_widgets: int = 0
    solutions: list[dict] = field(default_factory=list)

    def __repr__(self):
        return f"PageVisit({self.url!r})"

    def fail_request(self, url: str, reason: str) -> None:
        if not any(entry.startswith(url + " ") for entry in self.failed_requests):
            self.failed_requests.append(f"{url} ({reason})")


class NetworkWatch:
    """The requests a page has in flight, to wait until the page is quiet.

    Playwright's ``wait_for_load_state("networkidle")`` never returns for a page whose resources all came from
    the cache of a page visited before it in the same browser (seen with Chromium 156: nothing in flight, and
    no idle event), so the tests count requests themselves."""

    def __init__(self, page):
        self.pending: set = set()
        self.changed = time.monotonic()
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, request):
        self.pending.add(request)
        self.changed = time.monotonic()

    def _end(self, request):
        self.pending.discard(request)
        self.changed = time.monotonic()

    def wait_until_quiet(self, page, quiet_ms: int = 500, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
        """Return once no request has been in flight for ``quiet_ms``; raise after ``timeout_ms``."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self.pending or time.monotonic() - self.changed < quiet_ms / 1000:
            if time.monotonic() > deadline:
                urls = sorted(r.url[:120] for r in self.pending)
                raise PlaywrightTimeout(f"{page.url}: requests still in flight after {timeout_ms} ms: {urls}")
            page.wait_for_timeout(50)  # Playwright delivers the page's events while it waits


def _open(context, url: str) -> tuple:
    """Open a page with its failures recorded. The browser resolves no host but 127.0.0.1 (tests/conftest.py),
    so a request that would leave the machine fails, and is recorded, like any other failed request."""
    page = context.new_page()
    visit = PageVisit(url)

    def leaves_machine(request):
        if urlsplit(request.url).hostname not in (None, "127.0.0.1"):
            visit.fail_request(request.url, "would leave the machine")

    def console(message):
        # Requests the browser makes on its own (the favicon, say) only show up as console errors.
        if message.type == "error" and message.text.startswith("Failed to load resource"):
            visit.fail_request(message.location.get("url", ""), message.text)

    page.on("request", leaves_machine)
    network = NetworkWatch(page)
    page.on("requestfailed", lambda r: visit.fail_request(r.url, r.failure or "failed"))
    page.on("response", lambda r: r.status >= 400 and visit.fail_request(r.url, f"HTTP {r.status}"))
    page.on("pageerror", lambda e: visit.page_errors.append(e.message))
    page.on("console", console)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url, wait_until="load")
    # MathJax typesets after load; the widget manager renders each stored view into a .widget-subarea.
    page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
    try:
        page.wait_for_function(f"() => ({UNRENDERED_WIDGETS})() === 0", timeout=WIDGET_TIMEOUT_MS)
    except PlaywrightTimeout:
        pass  # counted below and reported by test_page_loads_cleanly
    network.wait_until_quiet(page)
    visit.unrendered_widgets = page.evaluate(UNRENDERED_WIDGETS)
    page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
    return page, visit


UNRENDERED_WIDGETS = """() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
  .filter(s => !(s.previousElementSibling && s.previousElementSibling.matches('.widget-subarea')
                 && s.previousElementSibling.childElementCount > 0)).length"""

SURVEY = r"""() => {
  const visible = el => el.checkVisibility({visibilityProperty: true, opacityProperty: true})
                        && el.getClientRects().length > 0;
  return {
    math: document.querySelectorAll('.math').length,
    mathTypeset: [...document.querySelectorAll('.math')].filter(m => m.querySelector('mjx-container')).length,
    rawWidgetMath: [...document.querySelectorAll('.widget-label, .widget-html-content, .widget-readout')]
      .filter(l => !l.querySelector('mjx-container') && /\$[^$]+\$|\\\(/.test(l.textContent))
      .map(l => l.textContent),
    images: [...document.images].map(img => ({
      src: img.getAttribute('src') || '', alt: img.getAttribute('alt'), loaded: img.complete && img.naturalWidth > 0,
      inOutput: !!img.closest('.cell_output'), inWidget: !!img.closest('.jupyter-widgets, .widget-subarea'),
      visible: visible(img),
    })),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id)
         .concat([...document.querySelectorAll('a[name]')].map(a => a.getAttribute('name'))),
    sliders: document.querySelectorAll('.widget-slider').length,
    widgetErrors: document.querySelectorAll('.jupyter-widgets-error-widget, .widget-error').length,
    solutions: [...document.querySelectorAll('.solution')].map(s => ({
      title: (s.querySelector('.admonition-title') || s).textContent.trim().slice(0, 80),
      dropdown: s.classList.contains('dropdown'),
      bodyVisible: [...s.children].filter(c => !c.matches('.admonition-title')).some(visible),
    })),
  };
}"""


@pytest.fixture(scope="session")
def site(browser, server) -> dict[str, PageVisit]:
    """Visit every page once and record what the browser met there."""
    visits = {}
    for rel in PAGES:
        if rel == "(no built book)" or _is_redirect(rel):
            continue
        page, visit = _open(browser, urljoin(server, rel))
        try:
            facts = page.evaluate(SURVEY)
            if SCREENSHOTS:
                shot = Path(SCREENSHOTS) / (rel.replace("/", "__").removesuffix(".html") + ".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
        finally:
            page.close()
        visit.math, visit.math_typeset = facts["math"], facts["mathTypeset"]
        visit.raw_widget_math = facts["rawWidgetMath"]
        visit.images, visit.links, visit.ids = facts["images"], facts["links"], set(facts["ids"])
        visit.sliders, visit.widget_errors, visit.solutions = (
            facts["sliders"],
            facts["widgetErrors"],
            facts["solutions"],
        )
        visits[rel] = visit
    return visits


def _visit(site, rel) -> PageVisit:
    if rel == "(no built book)":
        _unavailable(f"no built book at {HTML}: run `make book` first")
    return site[rel]


def _source_notebook(rel: str) -> Path | None:
    path = (BOOK / rel).with_suffix(".ipynb")
    return path if path.exists() else None


def _has_widget(nb: dict) -> bool:
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        if WIDGET_CODE.search(PLAYGROUND_CODE.sub("", _source(cell))):
            return True
        if any(WIDGET_VIEW in out.get("data", {}) for out in cell.get("outputs", [])):
            return True
    return False


def _has_static_figure(nb: dict) -> bool:
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or _tags(cell) & {"remove-output", "remove-cell", "hide-output"}:
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data and WIDGET_VIEW not in data:
                return True
    return False


@pytest.mark.browser
def test_index_redirects_to_the_root_page(browser, server):
    page = browser.new_page()
    try:
        page.goto(urljoin(server, "index.html"), wait_until="load")
        page.wait_for_url("**/intro.html", timeout=10_000)
        assert page.title(), "the page index.html redirects to has no title"
    finally:
        page.close()


@pytest.mark.browser
def test_a_request_that_would_leave_the_machine_fails_and_is_recorded(browser, server):
    """The offline guard itself: without it, every page could fetch from the network and still pass."""
    page, visit = _open(browser, urljoin(server, "intro.html"))
    try:
        outside = "http://example.com/optimlab-offline-check.png"
        loaded = page.evaluate(
            """url => new Promise(done => { const img = new Image();
                 img.onload = () => done(true); img.onerror = () => done(false); img.src = url; })""",
            outside,
        )
    finally:
        page.close()
    assert loaded is False, f"{outside} loaded: the browser is not offline"
    assert any(entry.startswith(outside) for entry in visit.failed_requests), visit.failed_requests


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_page_loads_cleanly(site, rel):
    visit = _visit(site, rel)
    problems = [f"request failed: {r}" for r in visit.failed_requests]
    problems += [f"page error: {e}" for e in visit.page_errors if e not in KNOWN_PAGE_ERRORS]
    if visit.widget_errors:
        problems.append(f"{visit.widget_errors} widget(s) failed to render")
    if visit.unrendered_widgets:
        problems.append(
            f"{visit.unrendered_widgets} widget(s) never rendered: the page has no widget state "
            "(was the notebook executed by the build?) or the widget manager did not load"
        )
    assert not problems, "\n  ".join([f"{rel}:"] + problems)


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_math_is_typeset(site, rel):
    visit = _visit(site, rel)
    assert visit.math_typeset == visit.math, (
        f"{visit.math - visit.math_typeset} of {visit.math} math elements were not typeset by MathJax"
    )
    assert not visit.raw_widget_math, f"widget labels with math left as text: {visit.raw_widget_math}"


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_figures_are_shown(site, rel):
    visit = _visit(site, rel)
    broken = [img["src"][:120] for img in visit.images if img["visible"] and not img["loaded"]]
    assert not broken, f"images that did not load: {broken}"
    nb_path = _source_notebook(rel)
    if nb_path is None:
        return
    static = [img for img in visit.images if img["inOutput"] and not img["inWidget"]]
    if _has_static_figure(_notebook(nb_path)):
        assert static, f"{nb_path.name} has figures in its outputs, but the page shows none"
    no_alt = [
        img["src"]
        for img in static
        if not img["alt"] or img["alt"] == img["src"] or img["alt"].endswith((".png", ".svg", ".jpg"))
    ]
    assert not no_alt, (
        f"figures without a description (set the cell's mystnb.image.alt metadata, see CONTRIBUTING.md): {no_alt}"
    )


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_solutions_start_collapsed(site, rel):
    visit = _visit(site, rel)
    opened = [s["title"] for s in visit.solutions if not s["dropdown"] or s["bodyVisible"]]
    assert not opened, f"solutions shown before the reader asks (give them `:class: dropdown`): {opened}"


PICTURES = """slider => {
  const area = slider.closest('.cell_output, .jp-OutputArea-output') || slider.closest('.widget-subarea')
               || document.body;  // the built book's cell output, or JupyterLab's (tests/test_jupyterlab.py)
  const visible = el => el.checkVisibility({visibilityProperty: true, opacityProperty: true})
                        && el.getClientRects().length > 0;
  return Promise.all([...area.querySelectorAll('img')].filter(visible).map(async img => {
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }));
}"""


def _pictures(slider) -> list[str]:
    """Digests of the image bytes visible in the slider's output area (blob: URLs change; bytes tell)."""
    return sorted(hashlib.sha256(base64.b64decode(b)).hexdigest() for b in slider.evaluate(PICTURES))


def _drag_to_far_end(page, slider) -> None:
    handle = slider.locator(".noUi-handle").first
    track = slider.locator(".noUi-target, .noUi-base").first
    handle.scroll_into_view_if_needed()
    h, t = handle.bounding_box(), track.bounding_box()
    x, y = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
    target = t["x"] + t["width"] if x < t["x"] + t["width"] / 2 else t["x"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(target, y, steps=12)
    page.mouse.up()


def _pictures_after_drag(page, slider, before: list[str]) -> list[str]:
    """Drag the slider to its far end; the pictures next to it once they differ from ``before`` (or 5 s on)."""
    _drag_to_far_end(page, slider)
    after = before
    for _ in range(50):
        after = _pictures(slider)
        if after != before:
            break
        page.wait_for_timeout(100)
    return after


@pytest.mark.browser
@pytest.mark.parametrize("rel", PAGES)
def test_sliders_change_their_picture(site, browser, server, rel):
    visit = _visit(site, rel)
    nb_path = _source_notebook(rel)
    expects_widget = nb_path is not None and _has_widget(_notebook(nb_path))
    if visit.sliders == 0:
        assert not expects_widget, (
            f"{nb_path.name} makes a widget, but the page has no slider: was widget state embedded "
            "(execute_notebooks must not be off) and did the widget manager load?"
        )
        return
    page, _ = _open(browser, visit.url)
    try:
        sliders = page.locator(".widget-slider")
        for i in range(sliders.count()):
            slider = sliders.nth(i)
            readout = slider.locator(".widget-readout").first
            before_value = readout.inner_text() if readout.count() else None
            before = _pictures(slider)
            assert before, f"slider {i + 1} has no picture next to it"
            after = _pictures_after_drag(page, slider, before)
            if before_value is not None:
                assert readout.inner_text() != before_value, f"slider {i + 1} did not move"
            assert after != before, f"moving slider {i + 1} (readout {before_value!r}) did not change its picture"
    finally:
        page.close()


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value)


@functools.cache
def _ids_in_file(path: Path) -> frozenset[str]:
    parser = _Anchors()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


@pytest.mark.browser
def test_internal_links_resolve(site, server):
    if not site:
        _unavailable(f"no built book at {HTML}: run `make book` first")
    broken = []
    for rel, visit in site.items():
        for href in visit.links:
            parts = urlsplit(href)
            if not href.startswith(server):
                continue
            target_rel = unquote(parts.path[len(urlsplit(server).path) :])
            target = HTML / target_rel
            if target_rel == "" or target.is_dir():
                target = target / "index.html"
                target_rel = (Path(target_rel) / "index.html").as_posix()
            if not target.is_file():
                broken.append(f"{rel}: {href} (no such file)")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = site[target_rel].ids if target_rel in site else _ids_in_file(target)
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{rel}: {href} (no anchor #{parts.fragment})")
    assert not broken, "broken internal links:\n  " + "\n  ".join(sorted(set(broken)))


# ---------------------------------------------------------------------------------------------------------
# The playground (optimlab.widgets.playground): its page in the built book

PLAYGROUND_PAGE = "pages/playground.html"
CANVAS = "() => [...document.querySelectorAll('.olp canvas')].map(c => c.toDataURL())"
LIVE = "() => document.querySelector('.olp') && document.querySelector('.olp').optimlabPlayground"


@pytest.fixture(scope="module")
def playground_page(browser, server):
    if not (HTML / PLAYGROUND_PAGE).exists():
        _unavailable(f"no {PLAYGROUND_PAGE} in {HTML}: run `make book` first")
    page, visit = _open(browser, urljoin(server, PLAYGROUND_PAGE))
    page.wait_for_function(LIVE)
    yield page, visit
    page.close()


@pytest.mark.browser
def test_playground_is_live_offline(playground_page):
    page, visit = playground_page
    assert not visit.failed_requests and not [e for e in visit.page_errors if e not in KNOWN_PAGE_ERRORS]
    assert page.locator(".olp-static").first.is_hidden(), "the static picture is still shown: the script did not run"
    assert page.locator(".olp-live").first.is_visible()
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('.olp input, .olp select')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id)""")
    assert not unlabelled, f"controls without a label: {unlabelled}"


@pytest.mark.browser
def test_playground_redraws_on_slider_and_drag(playground_page):
    page, _ = playground_page
    before = page.evaluate(CANVAS)
    slider = page.locator(".olp-slot input[type=range]").first
    slider.focus()
    for _ in range(40):
        page.keyboard.press("ArrowRight")
    after_slider = page.evaluate(CANVAS)
    assert after_slider[0] != before[0] and after_slider[1] != before[1], "moving a slider did not redraw"
    plot = page.locator(".olp-plot").first
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.6, steps=8)
    page.mouse.up()
    page.wait_for_timeout(100)
    after_drag = page.evaluate(CANVAS)
    assert after_drag[0] != after_slider[0], "dragging the start point did not redraw"
    start = page.evaluate("() => document.querySelector('.olp').optimlabPlayground.state.x0")
    plot.focus()
    page.keyboard.press("ArrowUp")
    assert page.evaluate("() => document.querySelector('.olp').optimlabPlayground.state.x0") != start


@pytest.mark.browser
def test_playground_fits_a_phone(browser, server):
    if not (HTML / PLAYGROUND_PAGE).exists():
        _unavailable(f"no {PLAYGROUND_PAGE} in {HTML}: run `make book` first")
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(urljoin(server, PLAYGROUND_PAGE), wait_until="load")
        page.wait_for_function(LIVE)
        wide = page.evaluate("""() => [...document.querySelectorAll('.olp, .olp *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.tagName + '.' + e.className)""")
        assert not wide, f"playground elements wider than a 390 px screen: {wide[:5]}"
    finally:
        page.close()


@pytest.mark.browser
def test_playground_javascript_in_chromium_equals_optimlab(playground_page):
    """The cross-check of tests/test_playground.py, run by the page's own module in Chromium."""
    from tests.test_playground import check_paths_in_page

    page, _ = playground_page
    check_paths_in_page(page)
