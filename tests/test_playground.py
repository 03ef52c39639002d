"""The playground's JavaScript (optimlab/playground.js) against optimlab itself, and its HTML output.

Every optimizer on every 2-D problem, with random hyperparameters, schedules and start points: the path node
computes with the page's module must equal optimlab's to 1e-12, relative to the size of the path, over 500
steps. optimlab's path comes from :func:`optimlab.experiments.run` (with the schedule as a multiplier from
:mod:`optimlab.schedules`), and for Sophia from the same loop with the problem's exact Hessian diagonal in
place of the random Hutchinson estimate (:func:`reference_path`). The same cases run in Chromium on the built
book's playground page (tests/test_book.py, marker ``browser``).

node is needed: without it the cross-check skips with a message, except in CI (``CI`` set), where it fails.
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

from optimlab import experiments, widgets
from optimlab.widgets import _playground_problem, playground_path
from tests.test_book import _unavailable

JS = Path(__file__).resolve().parents[1] / "optimlab" / "playground.js"
STEPS = 500
TOLERANCE = 1e-12
OPTIMIZERS = ["SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
              "Lion", "Sophia"]
PROBLEMS = ["ravine", "rosenbrock", "beale", "saddle"]
CASES_PER_PAIR = 3
# A run is well-conditioned when changing every gradient in its last bit moves optimlab's own path by at most
# this. On those runs the JavaScript must agree to TOLERANCE. On the others (an adaptive method circling a
# minimum can amplify a last-bit change a billion times) no second implementation can: numpy's pow and cos on
# AVX-512 machines and the C library's pow are not always correctly rounded, and the JavaScript rounds them
# correctly, so the two differ in the last bit now and then. There the JavaScript must stay within
# ILL_CONDITIONED_FACTOR times optimlab's own sensitivity.
WELL_CONDITIONED = 1e-13
ILL_CONDITIONED_FACTOR = 100


# ---------------------------------------------------------------------------------------------------------
# optimlab's side


def make_problem(spec):
    spec = {"name": spec} if isinstance(spec, str) else spec
    return _playground_problem(spec["name"], **{k: v for k, v in spec.items() if k != "name"})


def reference_path(optimizer, problem_spec, hyper, x0, steps, gradient_noise=None):
    """optimlab's path (:func:`optimlab.widgets.playground_path`: experiments.run, or Sophia's loop with the
    exact Hessian diagonal). With ``gradient_noise`` (a Generator) each gradient is taken at a point changed at
    random by at most one unit in the last place, and changed so itself: how much that moves the path measures
    how well-conditioned the run is."""
    if gradient_noise is None:
        return playground_path(optimizer, problem_spec, hyper, x0, steps)

    def noisy(*args, **kwargs):
        problem = _playground_problem(*args, **kwargs)
        exact = problem.grad

        def grad(x, t=0, rng=None):
            def ulp():
                return 1 + gradient_noise.choice([-1.0, 0.0, 1.0], size=x.shape) * 2.0**-53
            # a last-bit change of the point the gradient is taken at (it reaches pow's arguments), and of the result
            return exact(x * ulp(), t) * ulp()

        problem.grad = grad
        return problem

    with mock.patch.object(widgets, "_playground_problem", noisy):
        return playground_path(optimizer, problem_spec, hyper, x0, steps)


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
    if optimizer in ("AdamW", "Lion", "Sophia") or rng.random() < 0.25:
        hyper["weight_decay"] = float(10 ** rng.uniform(-3, -0.5))
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


def draw_cases(seed=20261204, wanted=CASES_PER_PAIR, tries=10):
    """Random cases for every optimizer and problem, each with optimlab's path (``reference``) and its
    ``sensitivity``: how far optimlab's own path moves when every gradient changes in its last bit. Draws
    until ``wanted`` well-conditioned cases (sensitivity <= WELL_CONDITIONED) per pair, or ``tries`` draws."""
    rng, cases = np.random.default_rng(seed), []
    for optimizer in OPTIMIZERS:
        for problem_name in PROBLEMS:
            kept = 0
            for _ in range(tries):
                case = random_case(rng, optimizer, problem_name)
                args = (case["optimizer"], case["problem"], case["hyper"], case["x0"], case["steps"])
                reference = reference_path(*args)
                noisy = reference_path(*args, gradient_noise=np.random.default_rng(len(cases)))
                cases.append({**case, "reference": reference, "sensitivity": relative_difference(noisy, reference)})
                kept += cases[-1]["sensitivity"] <= WELL_CONDITIONED
                if kept == wanted:
                    break
    return cases


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
    """Assert the cross-check; return the worst relative difference per optimizer over well-conditioned runs."""
    worst, bad = {}, []
    for case, path in zip(cases, paths):
        d = relative_difference(js_path(path), case["reference"])
        s = case["sensitivity"]
        shown = json.dumps({k: case[k] for k in ("optimizer", "problem", "hyper", "x0")})
        if s <= WELL_CONDITIONED:
            worst[case["optimizer"]] = max(worst.get(case["optimizer"], 0.0), d)
            if not d <= TOLERANCE:
                bad.append(f"{d:.3g} relative on a well-conditioned run: {shown}")
        elif not d <= max(TOLERANCE, ILL_CONDITIONED_FACTOR * s):
            bad.append(f"{d:.3g} relative, {d / s:.3g} times optimlab's own last-bit sensitivity {s:.3g}: {shown}")
    assert not bad, "JavaScript paths differ from optimlab's:\n  " + "\n  ".join(bad)
    return worst


def js_cases(cases) -> list[dict]:
    return [{k: v for k, v in c.items() if k not in ("reference", "sensitivity")} for c in cases]


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


def node_eval(expression: str):
    node = shutil.which("node")
    if node is None:
        _unavailable("node (Node.js 18 or later) is not on PATH: it runs the playground's JavaScript")
    script = f"require(process.argv[1]); const P = globalThis.optimlabPlayground; " \
             f"process.stdout.write(JSON.stringify({expression}));"
    out = subprocess.run([node, "-e", script, str(JS)], capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_javascript_path_equals_optimlab_for_every_optimizer_and_problem():
    cases, paths = cases_and_node_paths()
    for optimizer in OPTIMIZERS:
        for name in PROBLEMS:
            assert any(c["sensitivity"] <= WELL_CONDITIONED for c in cases
                       if c["optimizer"] == optimizer and _problem_of(c) == name), (
                f"no well-conditioned random run of {optimizer} on {name}: adjust the ranges of random_case")
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
    """Start points, boxes, minimizers, losses and gradients as optimlab.problems defines them."""
    specs = ["rosenbrock", "beale", "saddle", {"name": "ravine", "condition_number": 30.0, "angle": 0.4}]
    points = [[0.3, -0.7], [-1.1, 1.9], [2.0, 0.25]]
    pts = json.dumps(points)
    js = node_eval(f"{json.dumps(specs)}.map(s => {{ const p = P.problem(s); return {{x0: p.x0, bounds: p.bounds, "
                   f"xStar: p.xStar, loss: {pts}.map(q => p.loss(...q)), grad: {pts}.map(q => p.grad(...q)), "
                   f"hess: {pts}.map(q => p.hessianDiagonal(...q))}}; }})")
    for spec, got in zip(specs, js):
        p = make_problem(spec)
        np.testing.assert_allclose(got["x0"], p.x0, rtol=1e-15)
        np.testing.assert_allclose(got["bounds"], p.bounds, rtol=1e-15)
        np.testing.assert_allclose(got["loss"], p.loss(np.array(points)), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(got["grad"], p.grad(np.array(points)), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(got["hess"], np.diagonal(p.hessian(np.array(points)), axis1=-2, axis2=-1),
                                   rtol=1e-14, atol=1e-15)
        if p.x_star is not None:
            np.testing.assert_allclose(got["xStar"], p.x_star)


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
