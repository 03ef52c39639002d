"""The playground in Chromium: how long one update takes, how big its HTML is, and how close its paths are.

An update is what every slider move or drag of the start point costs: three optimizers × 500 steps computed in
the page's JavaScript, then the contour plot (from its cached background) and the loss curves redrawn. Measured
in headless Chromium (software rendering, as in CI) with performance.now() around the page's own update(), on
Beale with Adam, NAdam and Sophia under a cosine schedule (the slowest mix: NAdam and the schedule take the
double-double pow and cos every step). Reported: the fastest and the median of 200 updates, and the compute
alone (the three runs without drawing). Target: an update under 16 ms (one frame at 60 Hz).

A move of the ravine's κ or angle slider costs more: the contours are recomputed (the loss at every pixel of the
frame) before the update. Measured as the time the slider's own input handler takes, on the ravine with SGD,
Adam and NAdam, 500 steps, cosine schedule, 200 moves of each slider after 20 of warm-up.

Also printed: the HTML size of a three-optimizer playground (target < 100 KB), and the worst relative difference
between the JavaScript paths (node) and optimlab's, per optimizer, over the 384 random runs of
tests/test_playground.py (500 steps each; target <= 1e-12 on every run).

    python benchmarks/bench_playground.py [--book]     (--book: measure on _build/html/pages/playground.html)
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optimlab import widgets  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LIVE = "() => document.querySelector('.olp') && document.querySelector('.olp').optimlabPlayground"
SETUP = """() => {
  const inst = document.querySelector('.olp').optimlabPlayground;
  inst.state.problem = 'beale'; inst.state.x0 = [1.0, 1.5]; inst.state.steps = 500; inst.state.schedule = 'cosine';
  const P = window.optimlabPlayground;
  inst.state.slots = ['Adam', 'NAdam', 'Sophia'].map(n => ({optimizer: n, hyper: {...P.defaults(n), lr: 0.02}}));
}"""
MEASURE = """n => {
  const inst = document.querySelector('.olp').optimlabPlayground, P = window.optimlabPlayground;
  const updates = [], compute = [];
  for (let i = 0; i < n; i++) {
    inst.state.x0 = [1.0 + 1e-3 * (i % 7), 1.5];
    inst.update(); updates.push(inst.lastUpdateMs);
    const t0 = performance.now();
    for (const s of inst.state.slots) P.run(s.optimizer, 'beale', {...s.hyper, schedule: 'cosine'}, inst.state.x0, 500);
    compute.push(performance.now() - t0);
  }
  return {updates, compute};
}"""


SLIDERS = """([suffix, n]) => {
  const root = document.querySelector('.olp'), inst = root.optimlabPlayground, P = window.optimlabPlayground;
  inst.state.problem = 'ravine'; inst.state.steps = 500; inst.state.schedule = 'cosine';
  inst.state.slots = ['SGD', 'Adam', 'NAdam'].map(name => ({optimizer: name, hyper: {...P.defaults(name), lr: 0.1}}));
  const slider = document.getElementById(root.id + suffix), times = [];
  for (let i = 0; i < n; i++) {
    slider.value = String(suffix === '-kappa' ? 100 + (i * 37) % 800 : -80 + (i * 37) % 160);
    const t0 = performance.now(); slider.dispatchEvent(new Event('input')); times.push(performance.now() - t0);
  }
  return times;
}"""


def measure(url: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        # sphinx-thebe's double declaration on every book page is known and harmless (tests/test_book.py)
        page.on("pageerror", lambda e: "THEBE_JS_URL" not in e.message and errors.append(e.message))
        page.goto(url, wait_until="load")
        page.wait_for_function(LIVE)
        page.evaluate(SETUP)
        page.evaluate(MEASURE, 20)  # warm-up: the JIT compiles the rules
        out = page.evaluate(MEASURE, 200)
        for suffix in ("-kappa", "-angle"):
            page.evaluate(SLIDERS, [suffix, 20])
            out[suffix] = page.evaluate(SLIDERS, [suffix, 200])
        browser.close()
    out["errors"] = errors
    return out


def main():
    html = widgets.playground("beale", ("Adam", "NAdam", "Sophia"), steps=500, schedule="cosine")
    print(f"HTML of a three-optimizer playground: {len(html) / 1000:.1f} KB (target < 100 KB)")
    if "--book" in sys.argv:
        url = (ROOT / "_build" / "html" / "pages" / "playground.html").as_uri()
    else:
        tmp = pathlib.Path(tempfile.mkdtemp()) / "playground.html"
        tmp.write_text(f"<!doctype html><meta charset=utf-8><body>{html.html}", encoding="utf-8")
        url = tmp.as_uri()
    m = measure(url)
    u, c = m["updates"], m["compute"]
    print(f"update, 3 optimizers x 500 steps + redraw: fastest {min(u):.1f} ms, median {statistics.median(u):.1f} ms"
          f" (target < 16 ms); compute alone: fastest {min(c):.1f} ms, median {statistics.median(c):.1f} ms"
          f"{'; page errors: ' + str(m['errors']) if m['errors'] else ''}")
    for suffix, what in (("-kappa", "condition number κ"), ("-angle", "valley angle")):
        t = m[suffix]
        print(f"a move of the {what} slider (contours + update): fastest {min(t):.1f} ms, "
              f"median {statistics.median(t):.1f} ms (target < 16 ms)")

    from tests.test_playground import cases_and_node_paths, check_paths

    cases, paths = cases_and_node_paths()
    worst = check_paths(cases, paths)
    print(f"cross-check, node against optimlab, {len(cases)} random runs of 500 steps, all within 1e-12:")
    for name, d in worst.items():
        print(f"  {name:9s} worst relative difference {d:.2g}")

if __name__ == "__main__":
    main()
