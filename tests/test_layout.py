"""The built book on a desktop and on a phone: every page at 1400 and at 390 CSS pixels in headless Chromium.

What a reader meets at each width (marker ``browser``; ``make browser`` runs it after ``make book``):

- every picture keeps its natural aspect ratio (within 3%): no figure squashed by an inline width or height;
- on the desktop no block (code, printed output, table, equation, figure, widget) is wider than the column,
  and no block's content needs a horizontal scrollbar to fit the column (the second is about the chapters'
  content: code lines and printed tables longer than the column);
- on the phone nothing is cut off: the page does not scroll sideways, and a block wider than the screen
  scrolls inside its own box (nothing is clipped by a box that does not scroll);
- every slider has a visible name;
- no error in the console and no page error;
- a figure shown narrower than it was drawn opens at its drawn size on a tap (or Enter), and closes again;
- caption text has a contrast of at least 4.5 to its background (WCAG AA), in the light and the dark theme.

A full-page screenshot of every page at both widths is written to ``_build/screenshots/<width>/``. The book
and the browser are found as in tests/test_book.py (``OPTIMLAB_BOOK_DIR``; skips without them unless ``CI``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin

import pytest

from tests.test_book import (  # noqa: F401 - built_book and server are fixtures used here
    BOOK,
    PAGE_TIMEOUT_MS,
    PAGES,
    UNRENDERED_WIDGETS,
    WIDGET_TIMEOUT_MS,
    NetworkWatch,
    _unavailable,
    built_book,
    server,
)

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the browser fixture says what is missing
    PlaywrightTimeout = TimeoutError

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": 1400, "phone": 390}
SCREENSHOTS = BOOK / "_build" / "screenshots"
ASPECT_TOLERANCE = 0.03
ZOOM_BELOW = 0.95  # shown at under this share of its drawn width, a figure opens enlarged on a tap
WCAG_AA = 4.5

# Everything a reader sees as one block of the page body.
BLOCKS = ("pre, table, div.math, mjx-container[display='true'], figure, img, .cell_output > *, "
          ".jupyter-widgets, .widget-subarea, .olp, .admonition, blockquote, dl, ul, ol, p")

SURVEY = r"""([blockSelector]) => {
  const vw = document.documentElement.clientWidth;
  const column = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const col = column.getBoundingClientRect();
  const cs = el => getComputedStyle(el);
  const shown = el => el.getClientRects().length > 0 && el.checkVisibility({visibilityProperty: true});
  const name = el => {
    const id = el.id || (el.closest('[id]') || {}).id || '';
    const text = (el.getAttribute('alt') || el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 60);
    return `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string'
      ? '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.') : ''} in #${id}: ${JSON.stringify(text)}`;
  };
  const scrolls = el => ['auto', 'scroll'].includes(cs(el).overflowX);
  const clips = el => ['hidden', 'clip'].includes(cs(el).overflowX);
  // Pictures: the rendered box against the natural shape.
  const pictures = [...column.querySelectorAll('img')].filter(img => shown(img) && img.naturalWidth > 0)
    .map(img => {
      const r = img.getBoundingClientRect();
      return {name: name(img), natural: img.naturalWidth / img.naturalHeight, shown: r.width / r.height,
              width: r.width, height: r.height,
              drawn: parseFloat(img.style.width) || parseFloat(img.getAttribute('width')) || img.naturalWidth / 2,
              widget: !!img.closest('.optimlab-widget, .jupyter-widgets'),
              zoomable: img.classList.contains('optimlab-zoomable') && img.tabIndex === 0};
    }).filter(p => p.width > 0 && p.height > 0);
  const blocks = [...column.querySelectorAll(blockSelector)].filter(shown);
  // Desktop: a box wider than the column, or content wider than its (scrolling) box.
  const insideScroller = el => {
    for (let e = el.parentElement; e && e !== column; e = e.parentElement) if (scrolls(e)) return true;
    return false;
  };
  const wider = blocks.filter(el => {
    const r = el.getBoundingClientRect();
    return (r.left < col.left - 1 || r.right > col.right + 1) && !insideScroller(el);
  }).map(el => ({name: name(el), width: Math.round(el.getBoundingClientRect().width)}));
  const overflowing = blocks.filter(el => scrolls(el) && el.scrollWidth > el.clientWidth + 1)
    .map(el => ({name: name(el), content: el.scrollWidth, box: el.clientWidth}));
  // Phone: what lies beyond the screen or is clipped by a box that does not scroll.
  const cut = [];
  for (const el of blocks) {
    const r = el.getBoundingClientRect();
    let ancestor = el.parentElement, inScroller = false, clippedBy = null;
    while (ancestor && ancestor !== document.body) {
      if (scrolls(ancestor)) { inScroller = true; break; }
      if (clips(ancestor)) {
        const a = ancestor.getBoundingClientRect();
        if (r.right > a.right + 1 || r.left < a.left - 1) { clippedBy = name(ancestor); break; }
      }
      ancestor = ancestor.parentElement;
    }
    if (inScroller) continue;
    if (clippedBy) cut.push({name: name(el), why: 'clipped by ' + clippedBy});
    else if (r.right > vw + 1 || r.left < -1) cut.push({name: name(el), why: `reaches x = ${Math.round(r.right)}`});
  }
  // Equations whose content is wider than their box and whose box cannot scroll.
  for (const m of column.querySelectorAll('div.math, mjx-container[display="true"]')) {
    if (!shown(m) || m.scrollWidth <= m.clientWidth + 1) continue;
    let e = m, ok = false;
    for (; e && e !== column; e = e.parentElement) if (scrolls(e)) { ok = true; break; }
    if (!ok) cut.push({name: name(m), why: 'equation wider than its box, and no box around it scrolls'});
  }
  const sliders = [...document.querySelectorAll('.widget-slider')].filter(shown).map(s => ({
    label: ((s.querySelector('.widget-label') || {}).textContent || '').trim(),
    readout: ((s.querySelector('.widget-readout') || {}).textContent || '').trim(),
    track: Math.round((s.querySelector('.slider-container, .noUi-target') || s).getBoundingClientRect().left
                      - s.getBoundingClientRect().left),
  })).concat([...document.querySelectorAll('input[type=range]')].filter(shown).map(i => ({
    label: (i.labels && i.labels.length ? i.labels[0].textContent : i.getAttribute('aria-label') || '').trim(),
    readout: '', track: null,
  })));
  return {pageWidth: document.scrollingElement.scrollWidth, viewport: vw, column: Math.round(col.width),
          pictures, wider, overflowing, cut, sliders};
}"""

CONTRAST = r"""() => {
  const rgba = s => { const m = s.match(/[\d.]+/g) || [0, 0, 0, 0]; return m.map(Number).concat([1]).slice(0, 4); };
  const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3]));
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let colour = layers.length && layers[layers.length - 1][3] >= 1 ? layers.pop().slice(0, 3) : [255, 255, 255];
    while (layers.length) colour = over(layers.pop(), colour);
    return colour;
  };
  const out = [];
  for (const cap of document.querySelectorAll('figcaption, .caption, caption')) {
    if (!cap.getClientRects().length) continue;
    const walker = document.createTreeWalker(cap, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      // The permalink sign shows only on hover, in the link colour; math is drawn by MathJax in the text colour.
      if (!node.textContent.trim() || el.closest('mjx-container, .headerlink')) continue;
      const fg = rgba(getComputedStyle(el).color), bg = background(el);
      const colour = over(fg, bg);
      const [a, b] = [lum(colour), lum(bg)].sort((x, y) => y - x);
      out.push({text: node.textContent.trim().slice(0, 40), ratio: (a + 0.05) / (b + 0.05)});
    }
  }
  return out;
}"""


@dataclass(repr=False)
class Layout:
    """What one page looked like at one width."""

    page: str
    width: int
    errors: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    contrast: dict = field(default_factory=dict)


def _screenshot(page_name: str, width: int):
    return SCREENSHOTS / str(width) / (page_name.replace("/", "__").removesuffix(".html") + ".png")


@contextmanager
def _page_at(browser, width: int):
    """A new page of ``width`` CSS pixels (900 high), closed afterwards."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield page
    finally:
        page.close()


def _look(context, url: str, page_name: str, width: int) -> Layout:
    result = Layout(page_name, width)
    with _page_at(context, width) as page:
        page.on("console", lambda m: m.type == "error" and result.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: result.errors.append(f"page error: {e.message}"))
        network = NetworkWatch(page)
        page.goto(url, wait_until="load")
        page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
        try:
            page.wait_for_function(f"() => ({UNRENDERED_WIDGETS})() === 0", timeout=WIDGET_TIMEOUT_MS)
        except PlaywrightTimeout:
            result.errors.append("widgets did not render")
        network.wait_until_quiet(page)
        page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
        page.evaluate("() => Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
        result.facts = page.evaluate(SURVEY, [BLOCKS])
        shot = _screenshot(page_name, width)
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        result.contrast["light"] = page.evaluate(CONTRAST)
        errors = list(result.errors)   # what the reader's page logged; not what switching the theme below logs
        page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
        page.wait_for_timeout(50)
        result.contrast["dark"] = page.evaluate(CONTRAST)
        result.errors = errors
    return result


class _Layouts(dict):
    """Each page at each width, looked at once, when a test first asks for it."""

    def __init__(self, browser, root: str):
        super().__init__()
        self.browser, self.root = browser, root

    def __missing__(self, key):
        rel, width = key
        self[key] = _look(self.browser, urljoin(self.root, rel), rel, width)
        return self[key]


@pytest.fixture(scope="session")
def layouts(browser, server) -> _Layouts:  # noqa: F811 - the fixture from tests.test_book
    return _Layouts(browser, server)


def _layout(layouts, rel: str, width: int) -> Layout:
    if rel == "(no built book)":
        _unavailable(f"no built book in {BOOK / '_build' / 'html'}: run `make book` first")
    return layouts[rel, width]


ALL = [pytest.param(rel, w, id=f"{w}-{rel}") for w in WIDTHS.values() for rel in PAGES]
DESKTOP = [pytest.param(rel, WIDTHS["desktop"], id=rel) for rel in PAGES]
PHONE = [pytest.param(rel, WIDTHS["phone"], id=rel) for rel in PAGES]


@pytest.mark.parametrize("rel, width", ALL)
def test_pictures_keep_their_aspect_ratio(layouts, rel, width):
    facts = _layout(layouts, rel, width).facts
    off = [f"{p['name']}: shown {p['width']:.0f}x{p['height']:.0f}, {p['shown'] / p['natural'] - 1:+.1%}"
           for p in facts["pictures"] if abs(p["shown"] / p["natural"] - 1) > ASPECT_TOLERANCE]
    assert not off, "pictures squashed or stretched:\n  " + "\n  ".join(off)


@pytest.mark.parametrize("rel, width", DESKTOP)
def test_no_block_is_wider_than_the_desktop_column(layouts, rel, width):
    facts = _layout(layouts, rel, width).facts
    assert facts["pageWidth"] <= facts["viewport"], "the page scrolls sideways"
    wide = [f"{b['name']} ({b['width']} px)" for b in facts["wider"]]
    assert not wide, f"blocks wider than the {facts['column']} px column:\n  " + "\n  ".join(wide)


@pytest.mark.parametrize("rel, width", DESKTOP)
def test_block_content_fits_the_desktop_column(layouts, rel, width):
    """The chapters' content: code lines and printed tables that need a scrollbar at 1400 px."""
    facts = _layout(layouts, rel, width).facts
    over = [f"{b['name']}: {b['content']} px in a {b['box']} px box" for b in facts["overflowing"]]
    assert not over, f"blocks that scroll sideways in the {facts['column']} px column:\n  " + "\n  ".join(over)


@pytest.mark.parametrize("rel, width", PHONE)
def test_nothing_is_cut_off_on_a_phone(layouts, rel, width):
    facts = _layout(layouts, rel, width).facts
    assert facts["pageWidth"] <= facts["viewport"], (
        f"the page is {facts['pageWidth']} px wide on a {facts['viewport']} px screen: it scrolls sideways")
    cut = [f"{c['name']}: {c['why']}" for c in facts["cut"]]
    assert not cut, "cut off on a phone (a wide block must scroll in its own box):\n  " + "\n  ".join(cut)


@pytest.mark.parametrize("rel, width", ALL)
def test_every_slider_has_a_name(layouts, rel, width):
    sliders = _layout(layouts, rel, width).facts["sliders"]
    unnamed = [f"slider {i + 1} (value {s['readout']!r})" for i, s in enumerate(sliders) if not s["label"]]
    assert not unnamed, f"sliders without a name: {unnamed}"


@pytest.mark.parametrize("rel, width", DESKTOP)
def test_slider_tracks_line_up(layouts, rel, width):
    tracks = {s["track"] for s in _layout(layouts, rel, width).facts["sliders"] if s["track"] is not None}
    assert len(tracks) <= 1, f"slider tracks start at different x offsets: {sorted(tracks)}"


@pytest.mark.parametrize("rel, width", ALL)
def test_no_console_error(layouts, rel, width):
    errors = _layout(layouts, rel, width).errors
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("rel, width", DESKTOP)
def test_captions_have_aa_contrast(layouts, rel, width):
    contrast = _layout(layouts, rel, width).contrast
    low = [f"{theme}: {c['text']!r} {c['ratio']:.2f}" for theme, texts in contrast.items() for c in texts
           if c["ratio"] < WCAG_AA]
    assert not low, f"caption text below {WCAG_AA}:1 contrast:\n  " + "\n  ".join(low)


@pytest.mark.parametrize("rel, width", ALL)
def test_screenshot_of_every_page_at_both_widths(layouts, rel, width):
    _layout(layouts, rel, width)
    shot = _screenshot(rel, width)
    assert shot.exists() and shot.stat().st_size > 1000, f"no screenshot {shot}"


@pytest.mark.parametrize("rel, width", ALL)
def test_every_shrunk_figure_opens_at_full_size(layouts, rel, width):
    """A figure (not a widget's frame) shown at under 95% of its drawn width can be tapped open; no other can."""
    pictures = [p for p in _layout(layouts, rel, width).facts["pictures"] if not p["widget"]]
    wrong = [f"{p['name']}: shown {p['width']:.0f} of {p['drawn']:.0f} px, "
             f"{'' if p['zoomable'] else 'not '}marked to open on a tap"
             for p in pictures if p["zoomable"] != (p["width"] < ZOOM_BELOW * p["drawn"])]
    assert not wrong, "\n  ".join(["figures marked wrongly:", *wrong])


# A two-panel figure drawn wider than the desktop column (900 px): shrunk at both widths.
ZOOM_PAGE, ZOOM_FIGURE = "chapters/06_adam.html", "#fig-adam-best-lr img"

OPENED = r"""() => {
  const d = document.querySelector('dialog.optimlab-zoom');
  if (!d || !d.open) return null;
  const img = d.querySelector('img'), r = img.getBoundingClientRect();
  return {width: r.width, height: r.height, natural: img.naturalWidth / img.naturalHeight,
          scrolls: d.scrollWidth > d.clientWidth + 1, viewport: document.documentElement.clientWidth};
}"""


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_a_shrunk_figure_opens_at_full_size_on_a_tap(browser, server, width):  # noqa: F811
    with _page_at(browser, width) as page:
        page.goto(urljoin(server, ZOOM_PAGE), wait_until="load")
        figure = page.locator(ZOOM_FIGURE)
        figure.scroll_into_view_if_needed()
        drawn = float(figure.evaluate("img => parseFloat(img.style.width)"))
        shown = figure.bounding_box()["width"]
        assert shown < ZOOM_BELOW * drawn, f"the figure is shown at {shown:.0f} of {drawn:.0f} px: not shrunk"

        def enter():
            figure.focus()
            page.keyboard.press("Enter")

        def escape():
            page.keyboard.press("Escape")

        def close_button():
            page.get_by_role("button", name="Close").click()

        for how, open_it, close_it in (("tap", figure.click, escape), ("Enter", enter, escape),
                                       ("tap", figure.click, close_button)):
            open_it()
            page.wait_for_function(f"({OPENED})() !== null")
            opened = page.evaluate(OPENED)
            assert abs(opened["width"] - drawn) <= 1, f"{how}: opened at {opened['width']:.0f} px, drawn {drawn:.0f}"
            assert abs(opened["width"] / opened["height"] / opened["natural"] - 1) <= ASPECT_TOLERANCE
            assert opened["scrolls"] == (drawn > opened["viewport"]), f"{how}: {opened}"
            close_it()
            page.wait_for_function(f"({OPENED})() === null")


def test_a_figure_is_marked_when_the_window_narrows_and_unmarked_when_it_widens(browser, server):  # noqa: F811
    """Chapter 6's 700 px figure fits the desktop column; in a phone-wide window it is shrunk, then fits again."""
    marked = "sel => { const i = document.querySelector(sel); return i.classList.contains('optimlab-zoomable'); }"
    with _page_at(browser, WIDTHS["desktop"]) as page:
        page.goto(urljoin(server, ZOOM_PAGE), wait_until="load")
        figure = "#fig-adam-steps img"
        assert page.evaluate("sel => parseFloat(document.querySelector(sel).style.width)", figure) == 700
        for width, expected in ((WIDTHS["desktop"], False), (WIDTHS["phone"], True), (WIDTHS["desktop"], False)):
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_function(f"({marked})({figure!r}) === {str(expected).lower()}")
