"""The playground's JavaScript (optimlab/playground.js) against optimlab itself, and its HTML output.

Every optimizer on every 2-D problem, with random hyperparameters (weight decay included), schedules and start
points: the path node computes with the page's module must equal optimlab's to 1e-12, relative to the size of
the path, over 500 steps, in every one of 384 seeded random runs. optimlab's path comes from
:func:`optimlab.widgets.playground_path` (:func:`optimlab.experiments.run` with the schedule as a multiplier
from :mod:`optimlab.schedules`; for Sophia the same loop with the problem's exact Hessian diagonal in place of
the random Hutchinson estimate). That holds only because both compute the same bits: the problems' gradients
and Hessian diagonals, and the sine and cosine of the ravine's rotation, are checked bit for bit here (a
last-bit difference grows along an adaptive method's path). The same runs go through Chromium, on a page of
their own below and on the built book's playground page (tests/test_book.py), marker ``browser``.

node is needed: without it these tests skip with a message, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from optimlab import _trig, experiments, widgets
from optimlab.widgets import _playground_problem, playground_path
from tests.test_book import _unavailable

JS = Path(__file__).resolve().parents[1] / "optimlab" / "playground.js"
STEPS = 500
TOLERANCE = 1e-12
OPTIMIZERS = ["SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
              "Lion", "Sophia"]
PROBLEMS = ["ravine", "rosenbrock", "beale", "saddle"]
CASES_PER_PAIR = 8  # 12 × 4 × 8 = 384 runs: a failure rate of 1% would go unseen with probability 2%


# ---------------------------------------------------------------------------------------------------------
# optimlab's side


def make_problem(spec):
    spec = {"name": spec} if isinstance(spec, str) else spec
    return _playground_problem(spec["name"], **{k: v for k, v in spec.items() if k != "name"})


# ---------------------------------------------------------------------------------------------------------
# Random cases


LR_RANGE = {  # log10 of the learning rate: wide, up to the edge of stability on each problem
    "plain": {"ravine": (-2, 0.2), "rosenbrock": (-5, -3), "beale": (-5, -3), "saddle": (-2, -0.3)},
    "adaptive": (-3, -0.5),
    "sign": (-4, -1),
}


def _family(optimizer):
    if optimizer in ("SGD", "Momentum", "Nesterov"):
        return "plain"
    return "sign" if optimizer in ("Lion", "Sophia") else "adaptive"


def random_case(rng, optimizer, problem_name):
    family = _family(optimizer)
    low, high = LR_RANGE[family][problem_name] if family == "plain" else LR_RANGE[family]
    hyper = {"lr": float(10 ** rng.uniform(low, high))}
    beta1, beta2 = float(rng.uniform(0.0, 0.99)), float(1 - 10 ** rng.uniform(-4, -0.5))
    if optimizer in ("Momentum", "Nesterov"):
        hyper["momentum"] = float(rng.uniform(0.1, 0.99))
    elif optimizer == "SGD" and rng.random() < 0.5:
        hyper.update(momentum=float(rng.uniform(0.1, 0.95)), dampening=float(rng.uniform(0, 0.5)))
    elif optimizer == "RMSprop":
        hyper.update(alpha=beta2, momentum=float(rng.choice([0.0, rng.uniform(0, 0.9)])),
                     centered=bool(rng.random() < 0.3))
    elif optimizer == "Adagrad":
        hyper.update(lr_decay=float(rng.choice([0.0, 10 ** rng.uniform(-4, -1)])),
                     initial_accumulator_value=float(rng.choice([0.0, 0.1])))
    elif optimizer not in ("SGD",):
        hyper["betas"] = [beta1, beta2]
    if optimizer in ("Adam", "AdamW"):
        hyper["amsgrad"] = bool(rng.random() < 0.3)
    if optimizer == "NAdam":
        hyper["momentum_decay"] = float(10 ** rng.uniform(-3, -1))
    if optimizer == "Sophia":
        hyper["rho"] = float(10 ** rng.uniform(-2, 0))
    if optimizer in ("AdamW", "Lion", "Sophia") or rng.random() < 0.4:
        hyper["weight_decay"] = float(10 ** rng.uniform(-3, -0.5))
        if optimizer in ("Adam", "NAdam", "RAdam") and rng.random() < 0.5:
            hyper["decoupled_weight_decay"] = True
    schedule = str(rng.choice(["constant", "cosine", "warmup_cosine"]))
    if schedule != "constant":
        hyper["schedule"] = schedule
    if schedule == "warmup_cosine" and rng.random() < 0.5:
        hyper["warmup_steps"] = int(rng.integers(0, STEPS // 2))
    problem_spec = problem_name
    if problem_name == "ravine":
        problem_spec = {"name": "ravine", "condition_number": float(10 ** rng.uniform(0, 3)),
                        "angle": float(rng.uniform(-math.pi, math.pi))}
    (xmin, xmax), (ymin, ymax) = make_problem(problem_spec).bounds
    x0 = [float(rng.uniform(xmin, xmax)), float(rng.uniform(ymin, ymax))]
    if problem_name == "beale":  # Beale's far corners throw plain SGD out at once; start nearer the valley
        x0 = [float(rng.uniform(-2, 4)), float(rng.uniform(-1.5, 1.5))]
    return {"optimizer": optimizer, "problem": problem_spec, "hyper": hyper, "x0": x0, "steps": STEPS}


@functools.cache
def draw_cases(seed=20261205, per_pair=CASES_PER_PAIR):
    """``per_pair`` random cases for every optimizer and problem, each with optimlab's path (``reference``)."""
    rng, cases = np.random.default_rng(seed), []
    for optimizer in OPTIMIZERS:
        for problem_name in PROBLEMS:
            for _ in range(per_pair):
                case = random_case(rng, optimizer, problem_name)
                reference = playground_path(case["optimizer"], case["problem"], case["hyper"], case["x0"],
                                            case["steps"])
                cases.append({**case, "reference": reference})
    return tuple(cases)


def relative_difference(path, reference) -> float:
    """max |path − reference| over the run, divided by the largest |coordinate| of the reference path.
    Points where either path is not finite must be non-finite in both (a run that blows up does so in both)."""
    a, b = np.asarray(path, dtype=float), np.asarray(reference, dtype=float)
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(finite_a, finite_b):
        return math.inf
    if not finite_b.any():
        return 0.0
    scale = max(float(np.abs(b[finite_b]).max()), 1e-300)
    return float(np.abs(a[finite_b] - b[finite_b]).max()) / scale


def js_path(path) -> np.ndarray:
    """A path as JSON gives it back (NaN and infinities become null)."""
    return np.array([[np.nan if c is None else c for c in point] for point in path], dtype=float)


def _problem_of(case) -> str:
    return case["problem"] if isinstance(case["problem"], str) else case["problem"]["name"]


def check_paths(cases, paths) -> dict[str, float]:
    """Assert the cross-check on every run; return the worst relative difference per optimizer."""
    worst, bad = {}, []
    for case, path in zip(cases, paths, strict=True):
        d = relative_difference(js_path(path), case["reference"])
        worst[case["optimizer"]] = max(worst.get(case["optimizer"], 0.0), d)
        if not d <= TOLERANCE:
            shown = json.dumps({k: case[k] for k in ("optimizer", "problem", "hyper", "x0")})
            bad.append(f"{d:.3g} relative: {shown}")
    assert not bad, f"JavaScript paths differ from optimlab's in {len(bad)} of {len(cases)} runs:\n  " + \
        "\n  ".join(bad)
    return worst


def js_cases(cases) -> list[dict]:
    return [{k: v for k, v in c.items() if k != "reference"} for c in cases]


@functools.cache
def cases_and_node_paths():
    cases = draw_cases()
    return cases, node_run(js_cases(cases))


# ---------------------------------------------------------------------------------------------------------
# node

NODE_DRIVER = """
require(process.argv[1]);
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const P = globalThis.optimlabPlayground;
process.stdout.write(JSON.stringify(cases.map(c => P.run(c.optimizer, c.problem, c.hyper, c.x0, c.steps))));
"""


def node_run(cases):
    node = shutil.which("node")
    if node is None:
        _unavailable("node (Node.js 18 or later) is not on PATH: it runs the playground's JavaScript")
    out = subprocess.run([node, "-e", NODE_DRIVER, str(JS)], input=json.dumps(cases), capture_output=True,
                         text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def node_eval(expression: str, data=None):
    """The value of a JavaScript expression in node, with the module loaded as ``P`` and ``data`` (sent as JSON
    on standard input) as ``D``."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node (Node.js 18 or later) is not on PATH: it runs the playground's JavaScript")
    script = f"require(process.argv[1]); const P = globalThis.optimlabPlayground; " \
             f"const D = JSON.parse(require('fs').readFileSync(0, 'utf8')); " \
             f"process.stdout.write(JSON.stringify({expression}));"
    out = subprocess.run([node, "-e", script, str(JS)], input=json.dumps(data), capture_output=True, text=True,
                         check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_javascript_path_equals_optimlab_for_every_optimizer_and_problem():
    cases, paths = cases_and_node_paths()
    assert len(cases) == len(OPTIMIZERS) * len(PROBLEMS) * CASES_PER_PAIR
    for optimizer in OPTIMIZERS:
        for name in PROBLEMS:
            runs = [c for c, p in zip(cases, paths) if c["optimizer"] == optimizer and _problem_of(c) == name
                    and np.isfinite(js_path(p)).all()]
            assert len(runs) >= CASES_PER_PAIR // 2, f"{optimizer} on {name}: most random runs blew up"
    worst = check_paths(cases, paths)
    assert set(worst) == set(OPTIMIZERS)


def test_javascript_defaults_are_optimlabs():
    defaults = node_eval("Object.fromEntries(P.optimizers.map(n => [n, P.defaults(n)]))")
    for name, js in defaults.items():
        cls, course = experiments.optimizer_class(name)
        for key, value in js.items():
            if key == "hessian_every":
                continue
            expected = course.get(key, cls.hyper[key][0])
            assert value == (list(expected) if isinstance(expected, tuple) else expected), (name, key)


def test_problems_match_optimlab():
    """Start points, boxes and minimizers as optimlab.problems defines them; gradients and Hessian diagonals bit
    for bit (a last-bit difference grows along a path), at 2000 random points of each problem and of 40 random
    ravines; losses (only drawn) to 1e-14."""
    rng = np.random.default_rng(7)
    specs = ["rosenbrock", "beale", "saddle"] + [
        {"name": "ravine", "condition_number": float(10 ** rng.uniform(0, 3)), "angle": float(rng.uniform(-4, 4))}
        for _ in range(40)]
    points = np.concatenate([rng.uniform(-4.5, 4.5, (1500, 2)), rng.uniform(-1.5, 1.5, (500, 2))])
    js = node_eval("D.specs.map(s => { const p = P.problem(s), q = D.points; "
                   "return {x0: p.x0, bounds: p.bounds, xStar: p.xStar, loss: q.map(z => p.loss(...z)), "
                   "grad: q.map(z => p.grad(...z)), hess: q.map(z => p.hessianDiagonal(...z))}; })",
                   {"specs": specs, "points": points.tolist()})
    for spec, got in zip(specs, js, strict=True):
        p = make_problem(spec)
        np.testing.assert_array_equal(got["x0"], p.x0, err_msg=str(spec))
        np.testing.assert_array_equal(got["bounds"], p.bounds, err_msg=str(spec))
        np.testing.assert_array_equal(got["grad"], p.grad(points), err_msg=str(spec))
        np.testing.assert_array_equal(got["hess"], np.diagonal(p.hessian(points), axis1=-2, axis2=-1),
                                      err_msg=str(spec))
        np.testing.assert_allclose(got["loss"], p.loss(points), rtol=1e-14, atol=1e-15, err_msg=str(spec))
        if p.x_star is not None:
            np.testing.assert_array_equal(got["xStar"], p.x_star)


def test_sines_and_cosines_are_optimlabs_bit_for_bit():
    """The ravine's rotation takes sin and cos from optimlab._trig, which the JavaScript mirrors (its cosine
    schedules use the same cosine): the same bits at random angles, at every angle the page's slider gives
    (whole degrees), at every π t / T of a cosine schedule up to 1000 steps; and within one unit in the last
    place of the C library's (which is not always rounded correctly)."""
    rng = np.random.default_rng(11)
    angles = np.concatenate([rng.uniform(-np.pi, np.pi, 20_000), rng.uniform(-1e4, 1e4, 2000),
                             np.arange(-90, 91) * np.pi / 180, [0.0, -0.0, np.pi, -np.pi / 2, 1e5, 2e5, 1e300],
                             [np.pi * t / T for T in range(10, 1001, 10) for t in range(T)]])
    got = np.array(node_eval("D.map(x => P._sinCos(x))", angles.tolist()))
    s, c = _trig.sin_cos(angles)
    np.testing.assert_array_equal(got[:, 0], s)
    np.testing.assert_array_equal(got[:, 1], c)
    assert np.all(np.abs(s - np.sin(angles)) <= np.spacing(np.abs(s)))
    assert np.all(np.abs(c - np.cos(angles)) <= np.spacing(np.abs(c)))
    assert _trig.sin_cos(0.0) == (0.0, 1.0) and _trig.cos(np.pi) == -1.0


def test_javascript_rejects_bad_input():
    for call in ['P.run("Adamm", "beale", {}, null, 10)', 'P.run("Adam", "himmelblau", {}, null, 10)',
                 'P.run("Adam", "beale", {"lr": 0.1, "gamma": 2}, null, 10)', 'P.run("Adam", "beale", {}, null, 0)',
                 'P.run("Adam", "beale", {"schedule": "step"}, null, 10)']:
        message = node_eval(f"(() => {{ try {{ {call}; return null; }} catch (e) {{ return e.message; }} }})()")
        assert message, f"{call} did not raise"


# ---------------------------------------------------------------------------------------------------------
# The HTML output


def _fresh(*args, **kwargs) -> str:
    """The HTML a fresh kernel makes for its first playground (element ids count playgrounds per process)."""
    with mock.patch.object(widgets, "_playground_count", 0):
        return widgets.playground(*args, **kwargs).html


def test_html_is_deterministic_small_and_self_contained():
    first = _fresh("ravine", ("SGD", "Momentum", "Sophia"), condition_number=50, angle=30, steps=300)
    assert first == _fresh("ravine", ("SGD", "Momentum", "Sophia"), condition_number=50, angle=30, steps=300)
    assert len(first.encode()) < 100_000
    assert JS.read_text(encoding="utf-8") in first                      # the module, inline
    assert not re.search(r"""(src|href)=["'](?!data:)""", first)        # nothing fetched: no network
    assert re.search(r'<img src="data:image/png;base64,[^"]+" alt="ravine: paths of SGD, Momentum, Sophia', first)
    assert "To make it live, run this cell" in first
    other = _fresh("ravine", ("SGD", "Momentum", "Sophia"), condition_number=50, angle=30, steps=400)
    assert re.search(r'id="(olp-[0-9a-f]+-1)"', first)[1] != re.search(r'id="(olp-[0-9a-f]+-1)"', other)[1]


def test_two_playgrounds_in_one_kernel_get_distinct_ids():
    a, b = widgets.playground("beale", ("Adam",)).html, widgets.playground("beale", ("Adam",)).html
    assert re.search(r'id="(olp-[^"]+)"', a)[1] != re.search(r'id="(olp-[^"]+)"', b)[1]


@pytest.mark.parametrize("args, kwargs, match", [
    (("himmelblau",), {}, "problem"),
    (("beale", ()), {}, "optimizers"),
    (("beale", ("SGD", "Adam", "Lion", "RMSprop")), {}, "optimizers"),
    (("beale", ("Adamm",)), {}, "optimizers"),
    (("beale",), {"steps": 5}, "steps"),
    (("beale",), {"steps": 100.0}, "steps"),
    (("beale",), {"schedule": "step"}, "schedule"),
    (("ravine",), {"condition_number": 0.5}, "condition_number"),
    (("ravine",), {"angle": 120}, "angle"),
    (("beale",), {"x0": [1.0]}, "x0"),
    (("beale",), {"x0": [float("nan"), 1.0]}, "x0"),
    (("beale", ("SGD",)), {"hyperparameters": {"Adam": {"lr": 0.1}}}, "hyperparameters"),
    (("beale", ("SGD",)), {"hyperparameters": {"SGD": {"lr": -0.1}}}, "lr"),
])
def test_playground_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        widgets.playground(*args, **kwargs)
    with pytest.raises(TypeError, match="stepz"):
        widgets.playground("beale", stepz=10)


def test_the_module_is_package_data():
    """The JavaScript ships with the package (pyproject's package-data), so an installed optimlab finds it."""
    import tomllib

    pyproject = tomllib.loads((JS.parents[1] / "pyproject.toml").read_text())
    assert "playground.js" in pyproject["tool"]["setuptools"]["package-data"]["optimlab"]


# ---------------------------------------------------------------------------------------------------------
# In Chromium: the playground's HTML output on a page of its own (no book build needed)

PLAYGROUND_CANVAS = "() => [...document.querySelectorAll('.olp canvas')].map(c => c.toDataURL())"
STATE = "() => document.querySelector('.olp').optimlabPlayground.state"


@pytest.fixture(scope="module")
def playground_html_page(browser, tmp_path_factory):
    """A page holding one playground (the ravine, with SGD, AdamW and Sophia), its errors recorded. A keydown
    listener on the document stands for JupyterLab's notebook shortcuts: it takes the arrow keys (prevents their
    default action) and counts those that reach it."""
    path = tmp_path_factory.mktemp("playground") / "playground.html"
    html = widgets.playground("ravine", ("SGD", "AdamW", "Sophia"), condition_number=30, angle=20, steps=300).html
    path.write_text(f"<!doctype html><meta charset=utf-8><title>playground</title><body>{html}", encoding="utf-8")
    page, errors = browser.new_page(), []
    page.on("pageerror", lambda e: errors.append(e.message))
    page.add_init_script("""window.keysTaken = 0; document.addEventListener('keydown', e => {
        if (e.key.startsWith('Arrow')) { e.preventDefault(); window.keysTaken += 1; } });""")
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("() => document.querySelector('.olp') && document.querySelector('.olp').optimlabPlayground")
    yield page, errors
    page.close()


def check_paths_in_page(page) -> dict[str, float]:
    """The cross-check, run by the module of a page holding a playground (here, or the book's page)."""
    cases = draw_cases()
    paths = page.evaluate("cases => JSON.parse(JSON.stringify(cases.map(c => "
                          "window.optimlabPlayground.run(c.optimizer, c.problem, c.hyper, c.x0, c.steps))))",
                          js_cases(cases))
    return check_paths(cases, paths)


@pytest.mark.browser
def test_javascript_in_chromium_equals_optimlab(playground_html_page):
    """The cross-check above, run by the page's own module in Chromium: every run within 1e-12."""
    page, errors = playground_html_page
    assert set(check_paths_in_page(page)) == set(OPTIMIZERS) and not errors


@pytest.mark.browser
def test_arrow_keys_move_a_focused_slider_and_the_start_point(playground_html_page):
    """Keys pressed in the playground stay there (a notebook's shortcuts would take the arrow keys), and a press
    on the plot gives it the focus, so the arrow keys then move the start point."""
    page, errors = playground_html_page
    slider = page.locator(".olp-slot input[type=range]").first
    slider.focus()
    value, before = slider.input_value(), page.evaluate(PLAYGROUND_CANVAS)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert int(slider.input_value()) == int(value) + 3, "the arrow keys did not move the focused slider"
    assert page.evaluate(PLAYGROUND_CANVAS) != before
    plot = page.locator(".olp-plot").first
    box = plot.bounding_box()
    plot.click(position={"x": box["width"] * 0.4, "y": box["height"] * 0.4})
    page.wait_for_timeout(100)
    assert page.evaluate("() => document.activeElement === document.querySelector('.olp-plot')"), (
        "a press on the plot did not give it the focus")
    start = page.evaluate(STATE)["x0"]
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    x0 = page.evaluate(STATE)["x0"]
    assert x0[1] > start[1] and x0[0] < start[0], "the arrow keys did not move the start point"
    assert page.evaluate("() => window.keysTaken") == 0, "arrow keys left the playground"
    assert not errors


@pytest.mark.browser
def test_weight_decay_slider_for_every_optimizer(playground_html_page):
    """Every optimizer shows a weight-decay slider (decoupled for AdamW, Lion and Sophia, in the gradient for
    the others), starting at its default, and moving it changes the run and the drawing."""
    page, errors = playground_html_page
    select = page.locator(".olp-slot select").first
    for name in OPTIMIZERS:
        select.select_option(name)
        wd = page.locator(".olp-slot").first.locator("input[id$='-weight_decay']")
        assert wd.count() == 1, f"{name} has no weight-decay slider"
        label = page.locator(f"label[for='{wd.get_attribute('id')}']").inner_text()
        assert ("decoupled" in label) == (name in ("AdamW", "Lion", "Sophia")), (name, label)
        default = experiments.optimizer_class(name)[1].get("weight_decay",
                                                            experiments.optimizer_class(name)[0].hyper["weight_decay"][0])
        assert page.evaluate(STATE)["slots"][0]["hyper"]["weight_decay"] == default
        before = page.evaluate(PLAYGROUND_CANVAS)
        wd.fill("900")
        wd.dispatch_event("input")
        hyper = page.evaluate(STATE)["slots"][0]["hyper"]
        assert hyper["weight_decay"] == pytest.approx(10 ** (-4 + 4 * 899 / 999)), name
        assert page.evaluate(PLAYGROUND_CANVAS) != before, f"{name}: weight decay did not redraw"
        wd.fill("0")
        wd.dispatch_event("input")
        assert page.evaluate(STATE)["slots"][0]["hyper"]["weight_decay"] == 0
    assert not errors


@pytest.mark.browser
def test_playground_fits_a_phone_and_has_labelled_axes(browser, tmp_path_factory):
    """At 390 px nothing sticks out; the contour plot's frame leaves room for its ticks and axis labels."""
    path = tmp_path_factory.mktemp("phone") / "playground.html"
    html = widgets.playground("beale", ("Adam", "NAdam", "Lion"), steps=300).html
    path.write_text(f"<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
                    f"<body style='margin:8px'>{html}", encoding="utf-8")
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function("() => document.querySelector('.olp').optimlabPlayground")
        wide = page.evaluate("""() => [...document.querySelectorAll('.olp, .olp *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .map(e => e.tagName + '.' + e.className)""")
        assert not wide, f"playground elements wider than a 390 px screen: {wide[:5]}"
        # the margins of the contour plot hold ticks and labels: some dark pixels left of and below the frame
        inked = page.evaluate("""() => { const c = document.querySelector('.olp-plot'), g = c.getContext('2d');
            const dark = (x, y, w, h) => { const d = g.getImageData(x, y, w, h).data; let n = 0;
              for (let i = 0; i < d.length; i += 4) n += d[i] < 128; return n; };
            return [dark(0, 0, 40, 340), dark(44, 350, 420, 34)]; }""")
        assert inked[0] > 50 and inked[1] > 50, f"no tick labels beside or below the contour plot: {inked}"
    finally:
        page.close()
