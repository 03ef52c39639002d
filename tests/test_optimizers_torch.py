"""Reference tests: optimlab's optimizers against torch.optim 2.13.0, lion-pytorch and the authors' SophiaG.

Every optimizer is run side by side with its reference from the same starting point on the same random
gradients (a few exactly zero, a few None, which torch skips), with seeded random hyperparameters (12 settings
per optimizer), two parameter groups, parameters of shapes (1,), (7,), (4, 3), (2, 3, 2), for 200 steps, with a
learning rate changed half-way, through three code paths: separate arrays, flat buffers (``optimlab.as_flat``),
and a flat buffer of more than 2**20 elements (chunks on threads); then in float32 against torch in float32.

**Relative difference.** For a parameter b (the reference) and a (optimlab) after step t,
``max |a - b| / max(|b|, 1e-6 * S)`` where S is the largest |b| that parameter has had up to step t.
A coordinate is compared with its own size, except while it crosses zero, where it is compared with the scale
its rounding errors were made at (one millionth of its largest size so far). Without such a floor, a coordinate
that happens to pass very close to zero makes two correct implementations "differ" arbitrarily: with 1e-12 * S
the small arrays still pass (worst 2.5e-11), but among the million coordinates of the chunked test a few moments
(exp_avg changes sign all the time) reach 3e-10. float64 must agree to 1e-10 (measured: 1e-11 at worst).
float32: see RTOL_FLOAT32. ``pytest tests/test_optimizers_torch.py -q -s`` prints the worst difference per
optimizer and path.
"""

import os

import numpy as np
import pytest

import optimlab as ol
from tests.reference import require

torch = require("torch")
pytestmark = pytest.mark.torch

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam"]
SHAPES = [(1,), (7,), (4, 3), (2, 3, 2)]          # group 0: the first two, group 1: the other two
SETTINGS = 12                                      # random hyperparameter settings per optimizer
STEPS = 200
RTOL = 1e-10
FLOOR = 1e-6
WORST: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    if not torch.__version__.startswith("2.13.0"):
        message = f"the reference is torch==2.13.0 (requirements-dev.txt), found {torch.__version__}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield
    if WORST:
        print("\nworst relative difference against the reference, per optimizer and path:")
        for (name, path), worst in sorted(WORST.items()):
            print(f"  {name:8s} {path:20s} {worst:.3g}")


@pytest.fixture
def float64():
    """torch's default dtype float64 for the test (its scalar state, e.g. NAdam's mu_product, follows it)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def loguniform(rng, low, high):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def sample(name, rng):
    """One random hyperparameter setting, in torch's names (optimlab takes the same ones)."""
    h = {"lr": loguniform(rng, 1e-4, 1e-1),
         "weight_decay": 0.0 if rng.random() < 0.35 else loguniform(rng, 1e-4, 1e-1),
         "maximize": bool(rng.random() < 0.25)}
    # beta1 below 1/2 sometimes: torch's lerp switches formula at weight 1/2
    betas = (float(rng.uniform(0.0, 0.5) if rng.random() < 0.3 else rng.uniform(0.5, 0.99)),
             float(1 - loguniform(rng, 1e-4, 0.5)))
    eps = loguniform(rng, 1e-12, 1e-4)
    if name == "SGD":
        h["momentum"] = 0.0 if rng.random() < 0.25 else float(rng.uniform(0.0, 0.99))
        h["dampening"] = 0.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 0.9))
        h["nesterov"] = bool(h["momentum"] > 0 and h["dampening"] == 0 and rng.random() < 0.6)
    elif name == "Adagrad":
        h["lr_decay"] = 0.0 if rng.random() < 0.4 else loguniform(rng, 1e-4, 1e-1)
        h["eps"] = eps
    elif name == "RMSprop":
        h.update(alpha=float(rng.uniform(0.5, 0.999)), eps=eps, centered=bool(rng.random() < 0.5),
                 momentum=0.0 if rng.random() < 0.4 else float(rng.uniform(0.0, 0.95)))
    elif name in ("Adam", "AdamW"):
        h.update(betas=betas, eps=eps, amsgrad=bool(rng.random() < 0.4))
        if name == "Adam":
            h["decoupled_weight_decay"] = bool(rng.random() < 0.3)
    elif name == "Adamax":
        h.update(betas=betas, eps=eps)
    elif name == "NAdam":
        h.update(betas=betas, eps=eps, momentum_decay=loguniform(rng, 1e-4, 1e-1),
                 decoupled_weight_decay=bool(rng.random() < 0.4))
    elif name == "RAdam":
        h.update(betas=betas, eps=eps, decoupled_weight_decay=bool(rng.random() < 0.4))
    return h


def settings(name, k):
    """Defaults and the second group's overrides for setting k of optimizer ``name`` (seeded)."""
    rng = np.random.default_rng([NAMES.index(name), k])
    defaults, second = sample(name, rng), sample(name, rng)
    if name == "Adagrad":
        # torch fills every accumulator from the constructor's value and ignores a group's own
        defaults["initial_accumulator_value"] = 0.0 if k % 2 else float(rng.uniform(0.0, 1.0))
    return defaults, second, rng


class Worst:
    """The running relative difference of the metric above, per parameter."""

    def __init__(self, n, floor=FLOOR):
        self.scale = [0.0] * n
        self.value = 0.0
        self.floor = floor

    def update(self, ours, theirs):
        for i, (a, p) in enumerate(zip(ours, theirs)):
            b = p.detach().numpy()
            self.scale[i] = max(self.scale[i], float(np.max(np.abs(b))))
            floor = max(self.floor * self.scale[i], np.finfo(b.dtype).tiny)
            self.value = max(self.value, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))))


def record(name, path, value):
    WORST[name, path] = max(WORST.get((name, path), 0.0), value)


def random_grads(rng, shapes, scales, dtype, none_rate, zero_rate):
    grads = []
    for shape, scale in zip(shapes, scales):
        u = rng.random()
        if u < none_rate:
            grads.append(None)
        elif u < none_rate + zero_rate:
            grads.append(np.zeros(shape, dtype))
        else:
            grads.append((scale * rng.standard_normal(shape)).astype(dtype))
    return grads


def set_torch_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else torch.from_numpy(g.copy())


def step_both(opt, ref, grads, theirs, **step_options):
    """One step of optimlab's optimizer and of the reference, from the same gradients."""
    set_torch_grads(theirs, grads)
    ref.step(**step_options)
    opt.step(grads, **step_options)


def torch_params(arrays):
    return [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]


def compare_state(opt, ref, tol):
    """Final state: the same keys as torch (optimlab also counts SGD's steps) and values within ``tol``."""
    ours, theirs = opt.state_dict()["state"], ref.state_dict()["state"]
    if isinstance(opt, ol.SGD):  # torch keeps no state at all for SGD without momentum
        ours = {i: entry for i, entry in ours.items() if set(entry) != {"step"}}
    assert sorted(ours) == sorted(theirs)
    worst = 0.0
    for i, entry in theirs.items():
        expected_keys = set(entry) | ({"step"} if isinstance(opt, ol.SGD) else set())
        assert set(ours[i]) == expected_keys, (i, sorted(ours[i]), sorted(entry))
        for key, value in entry.items():
            value = value.detach().numpy()
            if key == "step":
                assert ours[i]["step"] == int(value)
            else:
                a = np.asarray(ours[i][key])
                floor = max(FLOOR * float(np.max(np.abs(value))), np.finfo(value.dtype).tiny)
                worst = max(worst, float(np.max(np.abs(a - value) / np.maximum(np.abs(value), floor))))
    assert worst <= tol, f"state differs from torch's by {worst:.3g}"


def run_pair(name, defaults, second, rng, *, steps, ours, theirs, split, dtype=np.float64, none_rate=0.05,
             zero_rate=0.05, lr_change=True, grads_as_flat=False, floor=FLOOR):
    """Step optimlab over ``ours`` and torch over ``theirs`` (same values) side by side; the worst difference."""
    opt = getattr(ol, name)([{"params": ours[:split]}, {"params": ours[split:], **second}], **defaults)
    ref = getattr(torch.optim, name)([{"params": theirs[:split]}, {"params": theirs[split:], **second}],
                                     **defaults, foreach=False)
    shapes = [a.shape for a in ours]
    scales = [loguniform(rng, 1e-3, 10.0) for _ in shapes]
    worst = Worst(len(ours), floor)
    for t in range(steps):
        if lr_change and t == steps // 2:       # a scheduler writes a new rate into both optimizers
            for group, tgroup in zip(opt.param_groups, ref.param_groups):
                group["lr"] = tgroup["lr"] = tgroup["lr"] * 0.3
        grads = random_grads(rng, shapes, scales, dtype, none_rate if t else 0.0, zero_rate)
        if t == 0:
            grads[1] = np.zeros(shapes[1], dtype)  # an exactly-zero first gradient: SGD's buffer starts at 0
        if grads_as_flat and all(g is not None for g in grads):
            _, views = ol.as_flat(grads, dtype)   # gradients that tile one buffer, as a flat model makes them
            grads = views
        step_both(opt, ref, grads, theirs)
        worst.update(ours, theirs)
    return opt, ref, worst.value


@pytest.mark.parametrize("k", range(SETTINGS))
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_float64(name, k, float64):
    defaults, second, rng = settings(name, k)
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [a.copy() for a in init]
    opt, ref, worst = run_pair(name, defaults, second, rng, steps=STEPS, ours=ours, theirs=torch_params(init),
                               split=2)
    record(name, "arrays", worst)
    assert worst <= RTOL, f"{name} {defaults} / {second}: worst relative difference {worst:.3g}"
    compare_state(opt, ref, RTOL)


@pytest.mark.parametrize("k", range(3))
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_flat_buffers(name, k, float64):
    """Parameters as views of one buffer per group: one vectorized update per group. Setting 2 skips a
    parameter once (the group is then updated parameter by parameter, on the same state)."""
    defaults, second, rng = settings(name, 100 + k)
    init = [rng.standard_normal(s) for s in SHAPES]
    _, first = ol.as_flat(init[:2])
    _, rest = ol.as_flat(init[2:])
    ours = first + rest
    opt, ref, worst = run_pair(name, defaults, second, rng, steps=STEPS, ours=ours, theirs=torch_params(init),
                               split=2, none_rate=0.01 if k == 2 else 0.0, grads_as_flat=k == 1)
    if k < 2:  # the path under test was taken: one unit per group, over the whole buffer
        assert [len(units) for units in opt._units] == [1, 1] and opt._units[0][0].flat
    record(name, "flat", worst)
    assert worst <= RTOL, f"{name} {defaults} / {second}: worst relative difference {worst:.3g}"
    compare_state(opt, ref, RTOL)


BIG = [(1024, 1024), (513,), (7, 3)]      # one flat group of 1 049 110 > 2**20 elements
LARGE = (300, 450)                         # and one large parameter on its own


@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_chunked_threaded(name, float64, monkeypatch):
    """A flat group larger than 2**20 elements is updated in chunks on several threads; a single large
    parameter (second group) too. Four steps suffice: every chunk runs the same code."""
    chunked = []
    original = ol.Optimizer._chunked

    def spy(self, unit, *args):
        chunked.append(unit.theta.size)
        return original(self, unit, *args)

    monkeypatch.setattr(ol.Optimizer, "_chunked", spy)
    defaults, second, rng = settings(name, 200)
    init = [rng.standard_normal(s) for s in BIG] + [rng.standard_normal(LARGE)]
    _, ours = ol.as_flat(init[:3])
    ours = ours + [init[3].copy()]
    opt, ref, worst = run_pair(name, defaults, second, rng, steps=4, ours=ours, theirs=torch_params(init),
                               split=3, none_rate=0.0, zero_rate=0.0, lr_change=False)
    assert sum(np.prod(s) for s in BIG) in chunked
    record(name, "chunked/threaded", worst)
    assert worst <= RTOL
    compare_state(opt, ref, RTOL)


# float32: both sides compute in float32 in the same order of operations, except for the association of a few
# scalar products, fused multiply-adds inside torch's kernels, and NAdam's running product (a float32 tensor in
# torch, a double here). Each step can therefore differ by a rounding or two, about one float32 epsilon
# (1.2e-7) of the magnitudes involved, and these differences random-walk over the steps. Near zero a relative
# difference means nothing in float32 (one rounding at the parameter's scale is already 100% of a value 1e-7
# times smaller), so the difference is measured in units of the parameter's largest size so far, S:
# max |a - b| / S. Over 100 steps the worst measured is about 3e-7 (2.5 epsilons); the bound 1e-5 is ~80
# epsilons, what one rounding per step for 100 steps could add up to at worst, and still 1000 times below what
# a real change of formula (a misplaced epsilon or bias correction) produces.
RTOL_FLOAT32 = 1e-5


@pytest.mark.parametrize("k", range(3))
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_float32(name, k):
    assert torch.get_default_dtype() == torch.float32
    defaults, second, rng = settings(name, 300 + k)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    ours = [a.copy() for a in init]
    opt, ref, worst = run_pair(name, defaults, second, rng, steps=100, ours=ours, theirs=torch_params(init),
                               split=2, dtype=np.float32, floor=1.0)
    assert all(p.dtype == np.float32 for p in ours)
    record(name, "float32 |a-b|/S", worst)
    assert worst <= RTOL_FLOAT32, f"{name} {defaults} / {second}: worst relative difference {worst:.3g}"


@pytest.mark.parametrize("dampening", [0.0, 0.3])
def test_sgd_momentum_changed_mid_run_matches_torch(dampening, float64):
    """A scheduler switching momentum off and on (torch: μ = 0 is plain SGD with the buffer kept, a buffer
    created late starts at that step's g) and starting from momentum 0 (the buffer starts later)."""
    rng = np.random.default_rng(77)
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [a.copy() for a in init]
    theirs = torch_params(init)
    opt = ol.SGD([{"params": ours[:2]}, {"params": ours[2:], "momentum": 0.0}], lr=0.05, momentum=0.9,
                 dampening=dampening)
    ref = torch.optim.SGD([{"params": theirs[:2]}, {"params": theirs[2:], "momentum": 0.0}], lr=0.05,
                          momentum=0.9, dampening=dampening)
    plan = {10: (0.0, 0.5), 20: (0.9, 0.0), 30: (0.5, 0.8)}   # step: (group 0's momentum, group 1's)
    worst = Worst(len(ours))
    for t in range(40):
        for gi, mu in enumerate(plan.get(t, ())):
            opt.param_groups[gi]["momentum"] = ref.param_groups[gi]["momentum"] = mu
        grads = random_grads(rng, SHAPES, [1.0] * 4, np.float64, 0.05 if t else 0.0, 0.0)
        step_both(opt, ref, grads, theirs)
        worst.update(ours, theirs)
    record("SGD", "momentum changes", worst.value)
    assert worst.value <= RTOL


# ----------------------------------------------------------------------------------------------------------------
# Lion against lucidrains' lion-pytorch; SophiaG against the authors' code (sophia-opt)


@pytest.mark.parametrize("k", range(8))
def test_lion_matches_lion_pytorch(k, float64):
    """lion-pytorch's decoupled_weight_decay=True divides the decay by the *constructor's* lr for every group;
    optimlab's weight_decay_scale="schedule" divides by each group's initial lr, so the second group is given
    the constructor's lr as its decay_base_lr to match."""
    lion_pytorch = require("lion_pytorch")
    rng = np.random.default_rng([50, k])
    paper = k % 2 == 1
    lr = loguniform(rng, 1e-5, 1e-2)
    defaults = {"lr": lr, "betas": (float(rng.uniform(0.5, 0.99)), float(rng.uniform(0.9, 0.999))),
                "weight_decay": 0.0 if k < 2 else loguniform(rng, 1e-3, 1.0)}
    second = {"lr": loguniform(rng, 1e-5, 1e-2), "betas": (float(rng.uniform(0.5, 0.99)), 0.98),
              "weight_decay": loguniform(rng, 1e-3, 1.0)}
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [a.copy() for a in init]
    theirs = torch_params(init)
    opt = ol.Lion([{"params": ours[:2]}, {"params": ours[2:], **second, "decay_base_lr": lr}], **defaults,
                  weight_decay_scale="schedule" if paper else "lr")
    ref = lion_pytorch.Lion([{"params": theirs[:2]}, {"params": theirs[2:], **second}], **defaults,
                            decoupled_weight_decay=paper)
    scales = [loguniform(rng, 1e-3, 10.0) for _ in SHAPES]
    worst = Worst(len(ours))
    for t in range(STEPS):
        if t == STEPS // 2:      # a schedule halves the rates: with "schedule" the decay follows lr/decay_base_lr
            for group, tgroup in zip(opt.param_groups, ref.param_groups):
                group["lr"] = tgroup["lr"] = tgroup["lr"] * 0.5
        grads = random_grads(rng, SHAPES, scales, np.float64, 0.05 if t else 0.0, 0.05)
        step_both(opt, ref, grads, theirs)
        worst.update(ours, theirs)
    record("Lion", "lion-pytorch", worst.value)
    assert worst.value <= RTOL
    for i, p in enumerate(theirs):
        np.testing.assert_allclose(opt.state[i]["exp_avg"], ref.state[p]["exp_avg"].numpy(), rtol=1e-12,
                                   atol=1e-300)


@pytest.mark.parametrize("k", range(8))
def test_sophia_matches_authors_sophiag(k, float64):
    """Both sides get the same Hessian estimates: every ``every`` steps a random g_h is drawn, torch's
    update_hessian() reads p.grad = g_h (it accumulates g_h * g_h), optimlab's reads the estimate g_h * g_h;
    then both step with the same bs. Before the first refresh h = 0 and every step is lr * sign(m)."""
    sophia_opt = require("sophia_opt")
    rng = np.random.default_rng([60, k])
    defaults = {"lr": loguniform(rng, 1e-5, 1e-2), "betas": (float(rng.uniform(0.5, 0.99)),
                                                             float(rng.uniform(0.5, 0.999))),
                "rho": loguniform(rng, 1e-3, 1.0), "weight_decay": 0.0 if k < 2 else loguniform(rng, 1e-3, 0.5),
                "maximize": bool(k % 3 == 2)}
    second = {"lr": loguniform(rng, 1e-5, 1e-2), "rho": loguniform(rng, 1e-3, 1.0),
              "betas": (0.9, float(rng.uniform(0.5, 0.999))), "weight_decay": loguniform(rng, 1e-3, 0.5)}
    every = int(rng.integers(1, 11))
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [a.copy() for a in init]
    theirs = torch_params(init)
    opt = ol.SophiaG([{"params": ours[:2]}, {"params": ours[2:], **second}], **defaults)
    ref = sophia_opt.SophiaG([{"params": theirs[:2]}, {"params": theirs[2:], **second}], **defaults)
    scales = [loguniform(rng, 1e-3, 10.0) for _ in SHAPES]
    worst = Worst(len(ours))
    for t in range(STEPS):
        grads = random_grads(rng, SHAPES, scales, np.float64, 0.05 if t else 0.0, 0.05)
        bs = int(rng.choice([1, 16, 480 * 1024])) if k % 2 else 5120
        step_both(opt, ref, grads, theirs, bs=bs)
        if t % every == every - 1:
            sampled = random_grads(rng, SHAPES, scales, np.float64, 0.1, 0.0)
            set_torch_grads(theirs, sampled)
            ref.update_hessian()
            opt.update_hessian([None if g is None else g * g for g in sampled])
        worst.update(ours, theirs)
    record("SophiaG", "sophia-opt", worst.value)
    assert worst.value <= RTOL
    for i, p in enumerate(theirs):
        for key in ("exp_avg", "hessian"):
            np.testing.assert_allclose(opt.state[i][key], ref.state[p][key].numpy(), rtol=1e-12, atol=1e-300)


# ----------------------------------------------------------------------------------------------------------------
# Boundaries that mutation testing found untested


def test_radam_at_rho_exactly_five_takes_the_unrectified_step_as_torch(float64):
    """β₂ = 0.8397685748659791 makes ρ₆ = 5.0 exactly: torch's test is ρₜ > 5, so step 6 is a plain momentum
    step; ρ₇ > 5 is rectified. Written as ρₜ >= 5 (or computed differently), step 6 would differ."""
    beta2 = 0.8397685748659791
    rho_inf = 2 / (1 - beta2) - 1
    assert rho_inf - 2 * 6 * beta2**6 / (1 - beta2**6) == 5.0
    rng = np.random.default_rng(6)
    init = [rng.standard_normal(s) for s in SHAPES]
    ours, theirs = [a.copy() for a in init], torch_params(init)
    opt = ol.RAdam(ours, lr=0.01, betas=(0.9, beta2))
    ref = torch.optim.RAdam(theirs, lr=0.01, betas=(0.9, beta2), foreach=False)
    worst = Worst(len(ours))
    for _ in range(8):
        step_both(opt, ref, [rng.standard_normal(s) for s in SHAPES], theirs)
        worst.update(ours, theirs)
    record("RAdam", "rho_t = 5", worst.value)
    assert worst.value <= RTOL


@pytest.mark.parametrize("name, options", [
    ("SGD", dict(momentum=1.0, dampening=0.5, weight_decay=1.0)),
    ("SGD", dict(momentum=1.0, nesterov=True, weight_decay=1.0)),
    ("Adam", dict(weight_decay=1.0)),
    ("Adam", dict(weight_decay=1.0, decoupled_weight_decay=True)),
    ("RMSprop", dict(momentum=1.0, weight_decay=1.0)),
])
def test_array_hyperparameters_of_one_everywhere_match_torch_per_row(name, options, float64):
    """A sweep whose momentum and weight decay arrays are 1.0 in every row: each row is torch's run with 1.0
    (an array equal to one must not be mistaken for "no momentum" or "no decay", nor for a scalar)."""
    rng = np.random.default_rng(21)
    rows = rng.standard_normal((3, 4))
    ours = rows.copy()
    arrays = {k: (np.full((3, 1), v) if k in ("momentum", "weight_decay") else v) for k, v in options.items()}
    opt = getattr(ol, name)([ours], lr=0.01, **arrays)
    theirs = [torch.nn.Parameter(torch.from_numpy(r.copy())) for r in rows]
    refs = [getattr(torch.optim, name)([p], lr=0.01, **options, foreach=False) for p in theirs]
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        opt.step([g])
        for i, (p, ref) in enumerate(zip(theirs, refs)):
            p.grad = torch.from_numpy(g[i].copy())
            ref.step()
    for i, p in enumerate(theirs):
        np.testing.assert_allclose(ours[i], p.detach().numpy(), rtol=RTOL, atol=1e-300)
