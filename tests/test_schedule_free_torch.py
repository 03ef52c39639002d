"""Reference tests: Schedule-Free SGD and AdamW against the authors' ``schedulefree`` 1.4.1, Prodigy against
``prodigyopt`` 1.1.2, in float64, with the metric of ``tests/test_optimizers_torch.py`` (relative difference
with a floor at one millionth of the parameter's largest size so far), bound 1e-10.

Each optimizer runs side by side with its reference from the same start on the same random gradients (a few
exactly zero, a few None), with seeded random hyperparameters, two parameter groups, parameters of shapes (1,),
(7,), (4, 3), (2, 3, 2), for 200 steps, with the learning rate changed half-way; through separate arrays, flat
buffers and a flat buffer of more than 2**20 elements (chunks on threads). Schedule-Free is switched to eval
mode and back several times mid-run, and compared at x (eval) as well as at y (train).
``pytest tests/test_schedule_free_torch.py -q -s`` prints the worst difference per optimizer and path.

The packages' counting, checked below where it matters: Schedule-Free's ``k`` belongs to a group and counts
the group's steps, whichever parameters had a gradient (the warm-up, the averaging weights and AdamW's bias
correction 1 − β₂^k all use it); Prodigy's ``k`` counts the steps that were taken (not the first calls that
found no gradient yet), and its d, betas and growth come from the first group.
"""

import contextlib
import io

import numpy as np
import pytest

import optimlab as ol
from tests.reference import require
from tests.test_optimizers_torch import (  # noqa: F401 (fixtures)
    Worst,
    _report_worst,
    float64,
    loguniform,
    random_grads,
    record,
    step_both,
    torch_params,
)

torch = require("torch")
schedulefree = require("schedulefree")
prodigyopt = require("prodigyopt")
pytestmark = pytest.mark.torch

SHAPES = [(1,), (7,), (4, 3), (2, 3, 2)]          # group 0: the first two, group 1: the other two
STEPS = 200
RTOL = 1e-10
# The floor of the relative difference, as a fraction of the parameter's largest size so far S: the scale its
# rounding errors are made at while it crosses zero. For Schedule-Free, as for torch's optimizers, the steps are
# small beside S, and 1e-6·S. Prodigy's steps are of the size of S by design (d estimates the distance to the
# solution: measured d·η ≈ S/4 in these runs), so one rounding of a step is already ~1e-16·S, 1e-10 of 1e-6·S:
# its floor is 1e-4·S (the worst measured with 1e-6·S was 2.5e-9, from differences of 4e-16 to 4e-15 absolute).
FLOOR = {"SGDScheduleFree": 1e-6, "AdamWScheduleFree": 1e-6, "Prodigy": 1e-4}
NAMES = ["SGDScheduleFree", "AdamWScheduleFree", "Prodigy"]
REFERENCE = {"SGDScheduleFree": lambda: schedulefree.SGDScheduleFree,
             "AdamWScheduleFree": lambda: schedulefree.AdamWScheduleFree,
             "Prodigy": lambda: prodigyopt.Prodigy}


def sample(name, rng, first=True):
    """One random setting in the packages' names (the second group's overrides when ``first`` is False)."""
    h = {"weight_decay": 0.0 if rng.random() < 0.35 else loguniform(rng, 1e-4, 1e-1)}
    if name == "Prodigy":
        h.update(eps=loguniform(rng, 1e-12, 1e-4), safeguard_warmup=bool(rng.random() < 0.4),
                 slice_p=1 if rng.random() < 0.6 else int(rng.integers(2, 5)))
        if first:  # read from the first group only by the package: the same in every group
            h.update(lr=1.0 if rng.random() < 0.5 else loguniform(rng, 0.3, 3.0),
                     betas=(0.0 if rng.random() < 0.2 else float(rng.uniform(0.5, 0.99)),
                            float(1 - loguniform(rng, 1e-4, 0.5))),
                     beta3=None if rng.random() < 0.5 else float(rng.uniform(0.5, 0.999)),
                     decouple=bool(rng.random() < 0.6), use_bias_correction=bool(rng.random() < 0.5),
                     d0=loguniform(rng, 1e-8, 1e-3), d_coef=float(rng.uniform(0.5, 2.0)),
                     growth_rate=float("inf") if rng.random() < 0.5 else float(rng.uniform(1.01, 1.2)))
        return h
    h.update(warmup_steps=0 if rng.random() < 0.4 else int(rng.integers(1, 60)),
             r=0.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 2.0)),
             weight_lr_power=2.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 3.0)))
    # β small sometimes: eval's x = y + (1 − 1/β)(z − y) then magnifies z − y, and torch's lerp switches formula
    beta = float(rng.uniform(0.05, 0.5) if rng.random() < 0.3 else rng.uniform(0.5, 0.99))
    if name == "SGDScheduleFree":
        h.update(lr=loguniform(rng, 1e-3, 1.0), momentum=beta)
    else:
        h.update(lr=loguniform(rng, 1e-4, 1e-1), betas=(beta, float(1 - loguniform(rng, 1e-4, 0.5))),
                 eps=loguniform(rng, 1e-12, 1e-4))
    return h


def settings(name, k):
    rng = np.random.default_rng([70 + NAMES.index(name), k])
    defaults, second = sample(name, rng), sample(name, rng, first=False)
    if name == "Prodigy" and k % 4 == 3 and defaults["betas"][0] > 0:
        second["lr"] = 0.0      # a frozen group: adds nothing to d, steps with the m (= 0) and v it has
    return defaults, second, rng


def start(name, rng, shapes):
    """Random parameters; zeros for Prodigy (see test_prodigy_from_a_random_start_...: from a random start, d
    is defined by the package only to about ε·|θ₀|/|θ₁ − θ₀|, far above rounding, whoever computes it)."""
    return [rng.standard_normal(s) * (name != "Prodigy") for s in shapes]


def build(name, defaults, second, ours, theirs, split):
    with contextlib.redirect_stdout(io.StringIO()):   # prodigyopt prints a line when decay is decoupled
        ref = REFERENCE[name]()([{"params": theirs[:split]}, {"params": theirs[split:], **second}], **defaults,
                                **({} if name == "Prodigy" else {"foreach": False}))
    opt = getattr(ol, name)([{"params": ours[:split]}, {"params": ours[split:], **second}], **defaults)
    return opt, ref


def run_pair(name, defaults, second, rng, *, steps, ours, theirs, split, none_rate=0.05, zero_rate=0.05,
             lr_change=True, switches=(), grads_as_flat=False):
    """Both side by side; for Schedule-Free, eval mode (compared at x) at each step in ``switches``."""
    opt, ref = build(name, defaults, second, ours, theirs, split)
    averaged = name != "Prodigy"
    if averaged:
        opt.train()
        ref.train()
    shapes = [a.shape for a in ours]
    scales = [loguniform(rng, 1e-3, 10.0) for _ in shapes]
    worst = Worst(len(ours), FLOOR[name])
    pull = [(loguniform(rng, 0.1, 10.0), rng.standard_normal(s)) for s in shapes] if not averaged else None
    for t in range(steps):
        if lr_change and t == steps // 2:
            for group, tgroup in zip(opt.param_groups, ref.param_groups):
                group["lr"] = tgroup["lr"] = tgroup["lr"] * 0.3
        if averaged and t in switches:
            opt.eval()
            ref.eval()
            worst.update(ours, theirs)   # at x
            if t % 2:
                opt.eval()             # idempotent
            opt.train()
            ref.train()
        grads = random_grads(rng, shapes, scales, np.float64, none_rate if t else 0.0, zero_rate)
        if t == 0:
            grads[1] = np.zeros(shapes[1])
        if pull is not None:   # a noisy quadratic: Prodigy's d estimates a distance that exists
            grads = [g if g is None else g + c * (p - p_star) for g, p, (c, p_star) in zip(grads, ours, pull)]
        if grads_as_flat and all(g is not None for g in grads):
            _, grads = ol.as_flat(grads)
        step_both(opt, ref, grads, theirs)
        worst.update(ours, theirs)       # at y (Schedule-Free in train mode)
    if averaged:
        opt.eval()
        ref.eval()
        worst.update(ours, theirs)
    return opt, ref, worst.value


def compare_state(name, opt, ref, theirs, tol):
    """The state arrays and the group counters, within ``tol`` (relative, floor as in the parameters)."""
    worst = 0.0
    for i, p in enumerate(theirs):
        entry = ref.state[p]
        for key, value in entry.items():
            if key == "step":
                assert opt.state[i]["step"] == value
                continue
            b = value.numpy()
            a = opt.state[i][key]
            if key in ("s", "p0"):       # the package keeps every slice_p-th element, flattened
                a = a.reshape(-1)[::opt.param_groups[opt._group_of(i)]["slice_p"]]
                if b.ndim == 0:          # p0 of a parameter that was all zeros: a scalar 0
                    b = np.zeros_like(a)
            floor = max(1e-6 * float(np.max(np.abs(b))), np.finfo(b.dtype).tiny)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))))
    keys = ["k", "weight_sum", "lr_max", "scheduled_lr", "train_mode"] if name != "Prodigy" else \
        ["k", "d", "d_max", "d_numerator"]
    for group, tgroup in zip(opt.param_groups, ref.param_groups):
        for key in keys:
            a, b = group[key], tgroup[key]
            assert (a == b) if isinstance(b, (bool, int)) else abs(a - b) <= tol * abs(b), (key, a, b)
    assert worst <= tol, f"state differs by {worst:.3g}"


@pytest.mark.parametrize("k", range(12))
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.usefixtures("float64")
def test_matches_reference_float64(name, k):
    defaults, second, rng = settings(name, k)
    init = start(name, rng, SHAPES)
    ours = [a.copy() for a in init]
    theirs = torch_params(init)
    switches = sorted(int(s) for s in rng.choice(np.arange(1, STEPS), 6, replace=False))
    opt, ref, worst = run_pair(name, defaults, second, rng, steps=STEPS, ours=ours, theirs=theirs, split=2,
                               switches=switches)
    record(name, "arrays", worst)
    assert worst <= RTOL, f"{name} {defaults} / {second}: worst relative difference {worst:.3g}"
    compare_state(name, opt, ref, theirs, RTOL)


@pytest.mark.parametrize("k", range(3))
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.usefixtures("float64")
def test_matches_reference_flat_buffers(name, k):
    """Views of one buffer per group: one vectorized update per group (setting 2 skips parameters sometimes,
    and the group is then updated parameter by parameter)."""
    defaults, second, rng = settings(name, 100 + k)
    init = start(name, rng, SHAPES)
    _, first = ol.as_flat(init[:2])
    _, rest = ol.as_flat(init[2:])
    ours = first + rest
    theirs = torch_params(init)
    opt, ref, worst = run_pair(name, defaults, second, rng, steps=STEPS, ours=ours, theirs=theirs, split=2,
                               none_rate=0.01 if k == 2 else 0.0, switches=(40, 41, 120), grads_as_flat=k == 1)
    if k < 2:
        assert [len(units) for units in opt._units] == [1, 1] and opt._units[0][0].flat
    record(name, "flat", worst)
    assert worst <= RTOL, f"{name} {defaults} / {second}: worst relative difference {worst:.3g}"
    compare_state(name, opt, ref, theirs, RTOL)


BIG = [(1024, 1024), (513,), (7, 3)]      # one flat group of 1 049 110 > 2**20 elements
LARGE = (300, 450)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.usefixtures("float64")
def test_matches_reference_chunked_threaded(name):
    """A flat group past 2**20 elements: the rule runs in chunks on threads (its per-step scalars c, γ, k
    reach every chunk); Prodigy's first pass runs on the whole group."""
    defaults, second, rng = settings(name, 200)
    init = start(name, rng, BIG + [LARGE])
    _, ours = ol.as_flat(init[:3])
    ours = ours + [init[3].copy()]
    theirs = torch_params(init)
    opt, ref, worst = run_pair(name, defaults, second, rng, steps=4, ours=ours, theirs=theirs, split=3,
                               none_rate=0.0, zero_rate=0.0, lr_change=False, switches=(2,))
    flat = opt._units[0][0]
    assert flat.flat and flat.theta.size >= ol._base.THREAD_MIN and isinstance(flat.scratch, list)  # chunked
    record(name, "chunked/threaded", worst)
    assert worst <= RTOL
    compare_state(name, opt, ref, theirs, RTOL)


# ----------------------------------------------------------------------------------------------------------------
# The packages' counting and quirks, shown on small cases


def pair(name, init, **options):
    ours = [a.copy() for a in init]
    theirs = torch_params(init)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = REFERENCE[name]()(theirs, **options)
    return getattr(ol, name)(ours, **options), ref, ours, theirs


@pytest.mark.usefixtures("float64")
def test_schedule_free_k_counts_the_groups_steps_not_the_parameters():
    """A parameter whose first gradient arrives at step 5 is bias-corrected with 1 − β₂⁵ (the group's k), not
    1 − β₂ (its own first step), and averaged with c₅ = 1/5, not 1: the same in both."""
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(3), rng.standard_normal(2)]
    opt, ref, ours, theirs = pair("AdamWScheduleFree", init, lr=0.05, betas=(0.9, 0.9))
    opt.train()
    ref.train()
    for t in range(6):
        grads = [rng.standard_normal(3), None if t < 4 else rng.standard_normal(2)]
        step_both(opt, ref, grads, theirs)
    assert opt.param_groups[0]["k"] == ref.param_groups[0]["k"] == 6
    assert opt.state[1]["step"] == 2
    np.testing.assert_allclose(ours[1], theirs[1].detach().numpy(), rtol=1e-14)
    # by hand: v = (1−β₂)g², ĝ = g/(√(v/(1−β₂⁵)) + ε); y = z = θ₀ at its first step, then y ← θ₀ + γ(β₁(1−c) − 1)ĝ
    # with c = w₅/Σw = 1/5 (constant lr)
    opt2, _, ours2, _ = pair("AdamWScheduleFree", init, lr=0.05, betas=(0.9, 0.9))
    opt2.train()
    rng = np.random.default_rng(3)
    for t in range(5):
        g = [rng.standard_normal(3), None if t < 4 else rng.standard_normal(2)]
        opt2.step(g)
    ghat = g[1] / (np.sqrt(0.1 * g[1] ** 2 / (1 - 0.9**5)) + 1e-8)
    np.testing.assert_allclose(ours2[1], init[1] + 0.05 * (0.9 * (1 - 1 / 5) - 1) * ghat, rtol=1e-14)


@pytest.mark.usefixtures("float64")
def test_schedule_free_a_group_added_in_train_mode():
    """The package starts a group added after train() in eval mode (its own flag), although step() runs it;
    optimlab's new group takes the optimizer's mode, so that eval() moves it to x like the others."""
    rng = np.random.default_rng(4)
    init = [rng.standard_normal(3), rng.standard_normal(2)]
    opt, ref, ours, theirs = pair("SGDScheduleFree", init[:1], lr=0.1)
    opt.train()
    ref.train()
    extra = init[1].copy()
    opt.add_param_group({"params": [extra]})
    ref.add_param_group({"params": [theirs_extra := torch.nn.Parameter(torch.from_numpy(init[1].copy()))]})
    assert ref.param_groups[1]["train_mode"] is False and opt.param_groups[1]["train_mode"] is True
    for _ in range(3):
        g = [rng.standard_normal(3), rng.standard_normal(2)]
        step_both(opt, ref, g, theirs + [theirs_extra])
    np.testing.assert_allclose(extra, theirs_extra.detach().numpy(), rtol=1e-14)   # steps agree
    opt.eval()
    ref.eval()
    x = ours[0].copy()
    np.testing.assert_allclose(x, theirs[0].detach().numpy(), rtol=1e-13)
    assert not np.allclose(extra, theirs_extra.detach().numpy())   # the package left its new group at y


@pytest.mark.usefixtures("float64")
def test_prodigy_takes_no_step_before_a_gradient_and_uses_the_old_d_in_the_step():
    """All-zero first gradients: the package returns before stepping (k stays 0, no state step). The first real
    step cannot move d (θ = θ₀, so ⟨g, θ₀ − θ⟩ = 0). At the second, d is updated before the parameters move,
    and the step is η·d_old·m/(√v + d_new·ε), m and v made with d_old."""
    rng = np.random.default_rng(5)
    init = [rng.standard_normal(4), rng.standard_normal((2, 2))]
    d0, eps, (beta1, beta2) = 1e-3, 1e-2, (0.9, 0.999)
    opt, ref, ours, theirs = pair("Prodigy", init, d0=d0, eps=eps)
    step_both(opt, ref, [np.zeros(4), np.zeros((2, 2))], theirs)
    assert opt.param_groups[0]["k"] == ref.param_groups[0]["k"] == 0 and opt.state[0]["step"] == 0
    assert np.array_equal(ours[0], init[0])
    g1 = [rng.standard_normal(4), rng.standard_normal((2, 2))]
    step_both(opt, ref, g1, theirs)
    assert opt.param_groups[0]["d"] == d0 and opt.param_groups[0]["k"] == 1
    theta1 = ours[0].copy()
    g2 = [1.5 * g for g in g1]   # still downhill: ⟨g, θ₀ − θ⟩ > 0, d grows
    step_both(opt, ref, g2, theirs)
    d_new = opt.param_groups[0]["d"]
    assert d_new > d0 and d_new == pytest.approx(ref.param_groups[0]["d"], rel=1e-14)
    m = beta1 * d0 * (1 - beta1) * g1[0] + d0 * (1 - beta1) * g2[0]
    v = beta2 * d0**2 * (1 - beta2) * g1[0] ** 2 + d0**2 * (1 - beta2) * g2[0] ** 2
    np.testing.assert_allclose(ours[0], theta1 - d0 * m / (np.sqrt(v) + d_new * eps), rtol=1e-13)
    np.testing.assert_allclose(ours[0], theirs[0].detach().numpy(), rtol=1e-13)


@pytest.mark.parametrize("k", range(6))
@pytest.mark.usefixtures("float64")
def test_prodigy_from_a_random_start_agrees_as_well_as_the_package_with_itself(k):
    """From a random θ₀, d comes from ⟨g, θ₀ − θ⟩ while θ − θ₀ is a few d₀ small: the subtraction loses about
    log10(|θ₀|/|θ − θ₀|) digits (five or six with d₀ = 1e-6), in the package as in optimlab, and what is lost stays
    in d. One rounding of the first update decides those digits: the package disagrees with itself when its
    parameters are moved by one unit in the last place after the first step about as much as optimlab disagrees
    with it; optimlab must stay within 10 times that. (From θ₀ = 0 nothing is lost: the tests above.)"""
    defaults, second, rng = settings("Prodigy", k)
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [a.copy() for a in init]
    theirs, nudged = torch_params(init), torch_params(init)
    opt, ref = build("Prodigy", defaults, second, ours, theirs, 2)
    _, again = build("Prodigy", defaults, second, [a.copy() for a in init], nudged, 2)
    scales = [loguniform(rng, 1e-3, 10.0) for _ in SHAPES]
    worst, worst_itself = Worst(len(ours), FLOOR["Prodigy"]), Worst(len(ours), FLOOR["Prodigy"])
    for t in range(STEPS):
        grads = random_grads(rng, SHAPES, scales, np.float64, 0.05 if t else 0.0, 0.05)
        for params in (theirs, nudged):
            for p, g in zip(params, grads):
                p.grad = None if g is None else torch.from_numpy(g.copy())
        again.step()
        if t == 0:
            with torch.no_grad():
                for p in nudged:
                    p.copy_(torch.from_numpy(np.nextafter(p.numpy(), np.inf)))
        step_both(opt, ref, grads, theirs)
        worst.update(ours, theirs)
        worst_itself.update([p.detach().numpy() for p in nudged], theirs)
    record("Prodigy", "random start", worst.value)
    record("Prodigy", "package, θ₁ + 1 ulp", worst_itself.value)
    assert worst.value <= 10 * worst_itself.value, (worst.value, worst_itself.value)


@pytest.mark.usefixtures("float64")
def test_prodigy_a_group_at_lr_0_still_moves():
    """The package's way of freezing a group (lr 0) skips its m and v, not its step: with β₁ > 0 its m stays 0
    and it stays put, but with β₁ = 0 it steps by η·d·d g/(√v + dε) with v = 0, that is by η·d·g/ε, a plain
    gradient step with learning rate η·d/ε; decoupled decay moves it too. optimlab does the same."""
    rng = np.random.default_rng(8)
    init = [rng.standard_normal(3), rng.standard_normal(2)]
    ours, theirs = [a.copy() for a in init], torch_params(init)
    groups = [{"params": [0]}, {"params": [1], "lr": 0.0}]
    options = dict(betas=(0.0, 0.999), eps=1e-3, d0=1e-4)
    opt = ol.Prodigy([{**groups[0], "params": ours[:1]}, {**groups[1], "params": ours[1:]}], **options)
    ref = prodigyopt.Prodigy([{**groups[0], "params": theirs[:1]}, {**groups[1], "params": theirs[1:]}], **options)
    g = rng.standard_normal(2)
    step_both(opt, ref, [rng.standard_normal(3), g], theirs)
    np.testing.assert_allclose(ours[1], init[1] - 1e-4 * g / 1e-3, rtol=1e-14)   # η·d₀/ε = 0.1
    for _ in range(3):
        step_both(opt, ref, [rng.standard_normal(3), rng.standard_normal(2)], theirs)
    np.testing.assert_allclose(ours[1], theirs[1].detach().numpy(), rtol=1e-13)
    assert not np.any(opt.state[1]["exp_avg_sq"])


@pytest.mark.usefixtures("float64")
def test_schedule_free_weights_keep_the_largest_lr_after_it_is_lowered():
    """w_k = k^r·γ_max^p uses the largest γ so far: lowering lr from 1 to 0.1 after 5 steps leaves every weight at
    1 (r = 0), so c₆ = 1/6, not 0.01/5.01 as weights in the current γ would give; the same in the package."""
    rng = np.random.default_rng(9)
    init = [rng.standard_normal(3)]
    opt, ref, ours, theirs = pair("SGDScheduleFree", init, lr=1.0)
    opt.train()
    ref.train()
    for t in range(6):
        if t == 5:
            opt.param_groups[0]["lr"] = ref.param_groups[0]["lr"] = 0.1
        step_both(opt, ref, [rng.standard_normal(3)], theirs)
    assert opt.param_groups[0]["weight_sum"] == ref.param_groups[0]["weight_sum"] == 6.0
    assert opt.param_groups[0]["lr_max"] == ref.param_groups[0]["lr_max"] == 1.0
    np.testing.assert_allclose(ours[0], theirs[0].detach().numpy(), rtol=1e-14)
