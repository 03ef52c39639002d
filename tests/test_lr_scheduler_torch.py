"""Reference tests: optimlab.lr_scheduler against torch.optim.lr_scheduler 2.13.0, number for number.

Every scheduler is run with many seeded random argument settings, two parameter groups with different base
rates, for at least 300 steps, on both sides; the rates (and cycled momentum / betas[0]) must agree to 1e-12
relative (in practice they are bitwise equal). ``pytest tests/test_lr_scheduler_torch.py -q -s`` prints the
worst relative difference per scheduler.
"""

import math
import os
import pickle
import warnings

import numpy as np
import pytest

if os.environ.get("CI"):
    try:  # in CI the reference must be there: a missing torch fails, it does not skip
        import torch
    except ImportError:
        pytest.fail("CI is set but torch is not installed: the reference tests need torch==2.13.0 "
                    "from requirements-dev.txt", pytrace=False)
else:
    torch = pytest.importorskip(
        "torch", reason="reference tests need torch==2.13.0 (pip install -r requirements-dev.txt)")
if not torch.__version__.startswith("2.13.0"):
    message = f"reference tests are pinned to torch==2.13.0, found {torch.__version__}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

from torch.optim import lr_scheduler as T  # noqa: E402

import optimlab  # noqa: E402
from optimlab import lr_scheduler as O  # noqa: E402
from optimlab.schedules import cosine_restarts_schedule, warmup_cosine_schedule  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("error::UserWarning")]

RTOL = 1e-12
SEEDS = range(24)
WORST: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    yield
    if WORST:
        print("\nworst relative difference against torch 2.13.0, per scheduler:")
        for name, worst in sorted(WORST.items()):
            print(f"  {name:28s} {worst:.3g}")


def warmup_cosine_multiplier(W, total, eta_min):
    """The warm-up-then-cosine multiplier written out from its definition (not optimlab's code), for torch's
    LambdaLR: k/W for k < W, then a half cosine from 1 to eta_min over the remaining total − W steps."""
    def f(k):
        if k < W:
            return k / W
        t = min(k - W, total - W)
        return eta_min + (1 - eta_min) * (1 + math.cos(math.pi * t / (total - W))) / 2
    return f


def wsd_multiplier(warmup_steps, stable_steps, decay_steps, decay_type="cosine", min_lr_ratio=0.0):
    """Warmup-stable-decay written out from its definition (Hu et al. 2024), for torch's LambdaLR."""
    def f(k):
        if k < warmup_steps:
            return k / warmup_steps
        if k < warmup_steps + stable_steps:
            return 1.0
        p = min((k - warmup_steps - stable_steps) / decay_steps, 1.0)
        h = {"linear": 1 - p, "cosine": (1 + math.cos(math.pi * p)) / 2, "1-sqrt": 1 - math.sqrt(p)}[decay_type]
        return min_lr_ratio + (1 - min_lr_ratio) * h
    return f


def rel(a, b) -> float:
    a, b = float(a), float(b)
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def record(name, worst):
    WORST[name] = max(WORST.get(name, 0.0), worst)
    assert worst <= RTOL, f"{name}: relative difference {worst:.3g} against torch"


# ------------------------------------------------------------------------------------------------------------
# Twin optimizers


OPTIMIZERS = {
    "sgd": (torch.optim.SGD, optimlab.SGD, {}),
    "sgd_momentum": (torch.optim.SGD, optimlab.SGD, {"momentum": 0.5}),
    "rmsprop": (torch.optim.RMSprop, optimlab.RMSprop, {}),
    "adam": (torch.optim.Adam, optimlab.Adam, {"betas": (0.8, 0.99)}),
    "adagrad": (torch.optim.Adagrad, optimlab.Adagrad, {}),
}


def twins(kind="sgd", lrs=(0.1, 0.03)):
    """The same optimizer on both sides: float64 dummy parameters, one group per base rate."""
    torch_cls, our_cls, kw = OPTIMIZERS[kind]
    t = torch_cls([{"params": [torch.zeros(2, dtype=torch.float64)], "lr": lr} for lr in lrs], **kw)
    o = our_cls([{"params": [np.zeros(2)], "lr": lr} for lr in lrs], **kw)
    return t, o


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group.get("momentum")


def compare(name, t_opt, o_opt, t_sched, o_sched, n, step_ours_every=50):
    """Step both n times; compare rates, momentum and counters after construction and after every step."""
    t_opt.step()  # no grads, nothing moves; torch only checks that optimizer.step() preceded the first step()
    worst = 0.0
    for k in range(n + 1):
        assert t_sched.last_epoch == o_sched.last_epoch
        for a, b in zip(t_sched.get_last_lr(), o_sched.get_last_lr(), strict=True):
            worst = max(worst, rel(a, b))
        for gt, go in zip(t_opt.param_groups, o_opt.param_groups, strict=True):
            worst = max(worst, rel(gt["lr"], go["lr"]))
            if momentum_of(gt) is not None:
                worst = max(worst, rel(momentum_of(gt), momentum_of(go)))
            if "betas" in gt:
                assert gt["betas"][1] == go["betas"][1]
        if k == n:
            break
        if k % step_ours_every == 0:  # the real optimizer accepts what the scheduler wrote
            o_opt.step([np.zeros(2) for _ in o_opt.param_groups])
        t_sched.step()
        o_sched.step()
    record(name, worst)


# ------------------------------------------------------------------------------------------------------------
# Random settings: each returns (scheduler name, arguments, optimizer kind, steps)


def _base_lrs(r):
    return tuple(float(10 ** r.uniform(-3, 0)) for _ in range(2))


class PowerDecay:
    """A picklable callable multiplier (torch saves a callable object's state in the state dict)."""

    def __init__(self, a):
        self.a = a

    def __call__(self, k):
        return 1.0 / (1.0 + self.a * k) ** 0.5


def scale_by_cycle(x):
    return 0.9 ** (x - 1)


def settings(name, r):
    if name == "StepLR":
        return dict(step_size=int(r.integers(1, 60)), gamma=float(r.uniform(0.5, 1.05))), "sgd", 300
    if name == "MultiStepLR":
        ms = sorted(int(m) for m in r.integers(0, 320, size=int(r.integers(1, 7))))
        if r.random() < 0.5:
            ms.append(ms[-1])  # a repeated milestone compounds
        return dict(milestones=ms, gamma=float(r.uniform(0.3, 0.99))), "sgd", 330
    if name == "ConstantLR":
        return dict(factor=float(r.uniform(0.02, 1.0)), total_iters=int(r.integers(1, 120))), "adam", 300
    if name == "LinearLR":
        args = dict(start_factor=float(r.uniform(0.01, 1.0)),
                    end_factor=float(r.choice([1.0, r.uniform(0, 1)])), total_iters=int(r.integers(1, 250)))
        return args, "sgd", 300
    if name == "ExponentialLR":
        return dict(gamma=float(r.uniform(0.95, 1.01))), "rmsprop", 300
    if name == "PolynomialLR":
        return dict(total_iters=int(r.integers(1, 400)), power=float(r.uniform(0, 3))), "sgd", 320
    if name == "CosineAnnealingLR":
        eta_min = float(r.choice([0.0, r.uniform(0, 1e-3)]))
        return dict(T_max=int(r.integers(1, 200)), eta_min=eta_min), "adam", 400
    if name == "CosineAnnealingWarmRestarts":
        return (dict(T_0=int(r.integers(1, 40)), T_mult=int(r.integers(1, 4)),
                     eta_min=float(r.choice([0.0, r.uniform(0, 1e-3)]))), "sgd", 400)
    if name == "LambdaLR":
        a = float(r.uniform(0.001, 0.1))
        choices = [lambda k: 1 / (k + 1), lambda k: 0.99**k, PowerDecay(a),
                   warmup_cosine_schedule(1.0, int(r.integers(0, 50)), 300, eta_min=0.01)]
        first, second = (choices[int(i)] for i in r.integers(0, len(choices), size=2))
        return dict(lr_lambda=[first, second] if r.random() < 0.5 else first), "adam", 300
    if name == "OneCycleLR":
        total = int(r.integers(300, 400))
        three = bool(r.random() < 0.4)
        args = dict(max_lr=[float(r.uniform(0.1, 2)), float(r.uniform(0.01, 0.5))] if r.random() < 0.7
                    else float(r.uniform(0.1, 1)),
                    pct_start=float(r.uniform(0.05, 0.45 if three else 0.95)),
                    anneal_strategy=str(r.choice(["cos", "linear"])), three_phase=three,
                    cycle_momentum=bool(r.random() < 0.8), base_momentum=float(r.uniform(0.5, 0.9)),
                    max_momentum=float(r.uniform(0.9, 0.99)), div_factor=float(r.uniform(2, 100)),
                    final_div_factor=float(10 ** r.uniform(1, 5)))
        if r.random() < 0.3:
            args.update(epochs=total // 10, steps_per_epoch=10)
            total = total // 10 * 10
        else:
            args["total_steps"] = total
        return args, str(r.choice(["sgd", "adam", "rmsprop"])), total
    if name == "CyclicLR":
        mode = str(r.choice(["triangular", "triangular2", "exp_range"]))
        args = dict(base_lr=[float(r.uniform(1e-4, 1e-2)), float(r.uniform(1e-4, 1e-2))],
                    max_lr=float(r.uniform(0.05, 1)) if r.random() < 0.5
                    else [float(r.uniform(0.05, 1)), float(r.uniform(0.05, 1))],
                    step_size_up=int(r.integers(1, 60)),
                    step_size_down=None if r.random() < 0.3 else int(r.integers(1, 60)),
                    mode=mode, gamma=float(r.uniform(0.97, 1.0)), cycle_momentum=bool(r.random() < 0.8),
                    base_momentum=float(r.uniform(0.5, 0.85)), max_momentum=float(r.uniform(0.85, 0.99)))
        if r.random() < 0.25:
            args.update(scale_fn=scale_by_cycle, scale_mode=str(r.choice(["cycle", "iterations"])))
        return args, str(r.choice(["sgd", "sgd_momentum", "adam", "rmsprop"])), 300
    raise AssertionError(name)


SIMPLE = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
          "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "LambdaLR", "OneCycleLR", "CyclicLR"]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", SIMPLE)
def test_matches_torch(name, seed):
    r = np.random.default_rng([seed, SIMPLE.index(name)])
    args, kind, n = settings(name, r)
    t_opt, o_opt = twins(kind, _base_lrs(r))
    t_sched, o_sched = getattr(T, name)(t_opt, **args), getattr(O, name)(o_opt, **args)
    compare(name, t_opt, o_opt, t_sched, o_sched, n)
    if name == "OneCycleLR":  # both refuse to go past total_steps
        with pytest.raises(ValueError):
            t_sched.step()
        with pytest.raises(ValueError, match="total_steps"):
            o_sched.step()


CHILDREN = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
            "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "LambdaLR", "CyclicLR"]


@pytest.mark.parametrize("seed", SEEDS)
def test_sequential_matches_torch(seed):
    r = np.random.default_rng([seed, 100])
    count = int(r.integers(2, 5))
    children = [(str(r.choice(CHILDREN)), None) for _ in range(count)]
    children = [(c, settings(c, r)[0]) for c, _ in children]
    if r.random() < 0.3:  # one-cycle as the last child: it must not run past its total steps
        args = settings("OneCycleLR", r)[0]
        args.pop("epochs", None), args.pop("steps_per_epoch", None)
        args["total_steps"] = 400
        children[-1] = ("OneCycleLR", args)
    milestones = sorted(int(m) for m in r.choice(np.arange(1, 250), size=count - 1, replace=False))
    kind = "adam" if r.random() < 0.5 else "sgd"
    t_opt, o_opt = twins(kind, _base_lrs(r))

    def build(M, opt):
        return M.SequentialLR(opt, [getattr(M, c)(opt, **a) for c, a in children], milestones)

    compare("SequentialLR", t_opt, o_opt, build(T, t_opt), build(O, o_opt), 320)


@pytest.mark.parametrize("seed", SEEDS)
def test_wsd_matches_torch_lambda(seed):
    r = np.random.default_rng([seed, 200])
    args = dict(warmup_steps=int(r.integers(0, 60)), stable_steps=int(r.integers(0, 200)),
                decay_steps=int(r.integers(1, 100)), decay_type=str(r.choice(["linear", "cosine", "1-sqrt"])),
                min_lr_ratio=float(r.choice([0.0, r.uniform(0, 0.5)])))
    t_opt, o_opt = twins(str(r.choice(["sgd", "adam"])), _base_lrs(r))
    compare("WSD", t_opt, o_opt, T.LambdaLR(t_opt, wsd_multiplier(**args)), O.WSD(o_opt, **args), 400)


@pytest.mark.parametrize("seed", SEEDS)
def test_warmup_cosine_schedule_matches_torch_lambda(seed):
    r = np.random.default_rng([seed, 201])
    W, total, eta_min = int(r.integers(0, 60)), int(r.integers(61, 300)), float(r.choice([0.0, r.uniform(0, 0.3)]))
    t_opt, o_opt = twins(str(r.choice(["sgd", "adam"])), _base_lrs(r))
    compare("warmup_cosine", t_opt, o_opt, T.LambdaLR(t_opt, warmup_cosine_multiplier(W, total, eta_min)),
            O.LambdaLR(o_opt, warmup_cosine_schedule(1.0, W, total, eta_min=eta_min)), 400)


def plateau_settings(r):
    args = dict(mode=str(r.choice(["min", "max"])), factor=float(r.uniform(0.1, 0.9)),
                patience=int(r.integers(0, 7)), threshold=float(r.choice([0.0, r.uniform(0, 0.2)])),
                threshold_mode=str(r.choice(["rel", "abs"])), cooldown=int(r.integers(0, 5)),
                min_lr=float(r.uniform(0, 1e-3)) if r.random() < 0.5
                else [float(r.uniform(0, 1e-3)), float(r.uniform(0, 1e-2))],
                eps=float(r.choice([1e-8, 1e-4])))
    k = np.arange(400)
    trend = np.exp(-k / r.uniform(20, 200)) + r.uniform(0.01, 0.3) * r.standard_normal(400)
    # ties (rounding), negative values and sign changes (the offset)
    metrics = np.round(r.uniform(-5, 5) + r.choice([-1, 1]) * trend, int(r.integers(1, 4)))
    return args, metrics


@pytest.mark.parametrize("seed", SEEDS)
def test_reduce_on_plateau_matches_torch(seed):
    r = np.random.default_rng([seed, 300])
    args, metrics = plateau_settings(r)
    t_opt, o_opt = twins(str(r.choice(["sgd", "adam"])), _base_lrs(r))
    t_sched, o_sched = T.ReduceLROnPlateau(t_opt, **args), O.ReduceLROnPlateau(o_opt, **args)
    worst = 0.0
    for m in metrics:
        t_sched.step(float(m))
        o_sched.step(float(m))
        for name in ("last_epoch", "best", "num_bad_epochs", "cooldown_counter"):
            assert getattr(t_sched, name) == getattr(o_sched, name), name
        for a, b in zip(t_sched.get_last_lr(), o_sched.get_last_lr(), strict=True):
            worst = max(worst, rel(a, b))
    record("ReduceLROnPlateau", worst)


def test_reduce_on_plateau_negative_metric_rel_threshold_is_inverted():
    """torch's rel rule with a negative best: −9.5 after −10 counts as better in mode 'min' (it is worse)."""
    t_opt, o_opt = twins("sgd", (1.0,))
    t_sched = T.ReduceLROnPlateau(t_opt, threshold=0.1, patience=0)
    o_sched = O.ReduceLROnPlateau(o_opt, threshold=0.1, patience=0)
    for m in [-10.0, -9.5, -9.0, -8.5]:
        t_sched.step(m)
        o_sched.step(m)
        assert o_sched.best == t_sched.best == m and o_sched.num_bad_epochs == t_sched.num_bad_epochs == 0
    assert o_sched.get_last_lr() == t_sched.get_last_lr() == [1.0]


# ------------------------------------------------------------------------------------------------------------
# Sweeps: one group with a (B, 1) array of rates is B scalar runs (torch: B groups)


SWEEP_ROWS = 3


def sweep_args(name, args, r):
    """Turn per-group settings into (ours: arrays of shape (B, 1), torch: lists of B values)."""
    ours, theirs = dict(args), dict(args)
    for key in ("max_lr", "base_lr", "min_lr"):
        if key in args:
            values = [float(r.uniform(0.01, 1) if key == "max_lr" else r.uniform(1e-4, 1e-2))
                      for _ in range(SWEEP_ROWS)]
            ours[key], theirs[key] = np.array(values)[:, None], values
    for key in ("base_momentum", "max_momentum"):
        if key in args:
            lo, hi = (0.5, 0.85) if key == "base_momentum" else (0.86, 0.99)
            values = [float(r.uniform(lo, hi)) for _ in range(SWEEP_ROWS)]
            ours[key], theirs[key] = np.array(values)[:, None], values
    if name == "LambdaLR" and isinstance(args["lr_lambda"], list):
        ours["lr_lambda"] = theirs["lr_lambda"] = args["lr_lambda"][0]
    return ours, theirs


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", [*SIMPLE, "ReduceLROnPlateau"])
def test_sweep_rows_match_torch_groups(name, seed):
    r = np.random.default_rng([seed, 400, len(name)])
    if name == "ReduceLROnPlateau":
        args, metrics = plateau_settings(r)
        args["min_lr"] = 0.0 if r.random() < 0.5 else [0.0]
        kind, n = "sgd", len(metrics)
    else:
        args, kind, n = settings(name, r)
        n = min(n, 300) if name != "OneCycleLR" else n
    ours, theirs = sweep_args(name, args, r)
    lrs = [float(10 ** r.uniform(-3, 0)) for _ in range(SWEEP_ROWS)]
    torch_cls, our_cls, kw = OPTIMIZERS[kind]
    t_opt = torch_cls([{"params": [torch.zeros(2, dtype=torch.float64)], "lr": lr} for lr in lrs], **kw)
    o_opt = our_cls([{"params": [np.zeros((SWEEP_ROWS, 2))], "lr": np.array(lrs)[:, None]}], **kw)
    if name == "ReduceLROnPlateau" and isinstance(theirs["min_lr"], list):
        theirs["min_lr"], ours["min_lr"] = [0.0] * SWEEP_ROWS, [np.zeros((SWEEP_ROWS, 1))]
    t_sched, o_sched = getattr(T, name)(t_opt, **theirs), getattr(O, name)(o_opt, **ours)
    t_opt.step()
    worst = 0.0
    for k in range(n + 1):
        row_lrs = np.asarray(o_opt.param_groups[0]["lr"]).ravel()
        assert row_lrs.shape == (SWEEP_ROWS,)
        for a, b in zip([g["lr"] for g in t_opt.param_groups], row_lrs, strict=True):
            worst = max(worst, rel(a, b))
        m = momentum_of(o_opt.param_groups[0])
        if m is not None and np.ndim(m):
            for a, b in zip([momentum_of(g) for g in t_opt.param_groups], np.ravel(m), strict=True):
                worst = max(worst, rel(a, b))
        if k == n:
            break
        if k % 100 == 0:
            o_opt.step([np.zeros((SWEEP_ROWS, 2))])
        if name == "ReduceLROnPlateau":
            t_sched.step(float(metrics[k]))
            o_sched.step(float(metrics[k]))
        else:
            t_sched.step()
            o_sched.step()
    record(f"{name} (sweep rows)", worst)


# ------------------------------------------------------------------------------------------------------------
# Resuming: state_dict (through pickle) mid-run, and last_epoch=k in the constructor


def restore_groups(opt, saved_groups):
    """Put saved group values back, as optimizer.load_state_dict does for torch (rates and scheduler keys)."""
    for group, saved in zip(opt.param_groups, saved_groups, strict=True):
        group.update({k: v for k, v in saved.items() if k != "params"})


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("name", [*SIMPLE, "SequentialLR", "WSD", "ReduceLROnPlateau"])
def test_state_dict_through_pickle_continues_like_torch(name, seed):
    r = np.random.default_rng([seed, 500, len(name)])
    metrics = None
    if name == "SequentialLR":
        args, kind, n = {}, "adam", 300

        def build(M, opt):
            return M.SequentialLR(opt, [M.LinearLR(opt, 0.1, 1.0, 20), M.CosineAnnealingLR(opt, 100, 1e-4),
                                        M.CosineAnnealingWarmRestarts(opt, 7, 2)], [20, 120])
    elif name == "WSD":
        args = dict(warmup_steps=30, stable_steps=150, decay_steps=60, decay_type="1-sqrt")
        kind, n = "sgd", 300

        def build(M, opt):
            return O.WSD(opt, **args) if M is O else T.LambdaLR(opt, wsd_multiplier(**args))
    elif name == "ReduceLROnPlateau":
        args, metrics = plateau_settings(r)
        kind, n = "sgd", len(metrics)

        def build(M, opt):
            return M.ReduceLROnPlateau(opt, **args)
    else:
        args, kind, n = settings(name, r)

        def build(M, opt):
            return getattr(M, name)(opt, **args)

    lrs = _base_lrs(r)
    t_opt, o_opt = twins(kind, lrs)
    t_sched, o_sched = build(T, t_opt), build(O, o_opt)
    t_opt.step()
    cut = int(r.integers(1, n - 1))
    for k in range(n):
        if k == cut:  # save, and continue in a brand-new optimizer and scheduler
            blob = pickle.dumps((o_opt.state_dict(), o_sched.state_dict()))
            _, o_opt = twins(kind, lrs)
            o_sched = build(O, o_opt)
            opt_state, sched_state = pickle.loads(blob)
            restore_groups(o_opt, opt_state["param_groups"])
            o_sched.load_state_dict(sched_state)
        if metrics is None:
            t_sched.step()
            o_sched.step()
        else:
            t_sched.step(float(metrics[k]))
            o_sched.step(float(metrics[k]))
        assert t_sched.last_epoch == o_sched.last_epoch
        for a, b in zip(t_sched.get_last_lr(), o_sched.get_last_lr(), strict=True):
            assert rel(a, b) <= RTOL
        for gt, go in zip(t_opt.param_groups, o_opt.param_groups, strict=True):
            assert rel(gt["lr"], go["lr"]) <= RTOL
            if momentum_of(gt) is not None:
                assert rel(momentum_of(gt), momentum_of(go)) <= RTOL


RESUMABLE = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
             "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "LambdaLR", "OneCycleLR", "CyclicLR"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", RESUMABLE)
def test_last_epoch_resume_matches_torch(name, seed):
    """A second scheduler built with last_epoch=k on the same optimizer: torch's off-by-one included."""
    r = np.random.default_rng([seed, 600, len(name)])
    args, kind, n = settings(name, r)
    t_opt, o_opt = twins(kind, _base_lrs(r))
    t_first, o_first = getattr(T, name)(t_opt, **args), getattr(O, name)(o_opt, **args)
    k = int(r.integers(0, n // 2))
    t_opt.step()
    for _ in range(k):
        t_first.step()
        o_first.step()
    t_sched = getattr(T, name)(t_opt, last_epoch=k, **args)
    o_sched = getattr(O, name)(o_opt, last_epoch=k, **args)
    compare(f"{name} (last_epoch resume)", t_opt, o_opt, t_sched, o_sched, n - k - 1)


# ------------------------------------------------------------------------------------------------------------
# Counting and side effects, shown on both sides


def test_stacked_constructors_compound_like_torch():
    t_opt, o_opt = twins("sgd", (0.1, 0.02))
    T.LinearLR(t_opt, 0.5)
    O.LinearLR(o_opt, 0.5)
    t_s, o_s = T.ConstantLR(t_opt, 0.5), O.ConstantLR(o_opt, 0.5)
    assert [g["lr"] for g in o_opt.param_groups] == [g["lr"] for g in t_opt.param_groups] == [0.025, 0.005]
    assert o_s.base_lrs == t_s.base_lrs == [0.1, 0.02]  # initial_lr was set by the first scheduler only


def test_two_chainable_schedulers_on_one_optimizer_compound_like_torch():
    t_opt, o_opt = twins("sgd")
    pairs = [(T.CosineAnnealingLR(t_opt, 50), O.CosineAnnealingLR(o_opt, 50)),
             (T.StepLR(t_opt, 10, 0.5), O.StepLR(o_opt, 10, 0.5))]
    worst = 0.0
    for _ in range(300):
        t_opt.step()
        for t_s, o_s in pairs:
            t_s.step()
            o_s.step()
        for gt, go in zip(t_opt.param_groups, o_opt.param_groups):
            worst = max(worst, rel(gt["lr"], go["lr"]))
    record("two chained schedulers", worst)


def test_cyclic_first_rate_uses_an_earlier_initial_lr_like_torch():
    """torch quirk: CyclicLR's constructor step computes lr(0) from initial_lr, which an earlier scheduler
    may have set to the optimizer's old rate; from lr(1) on base_lr is used."""
    t_opt, o_opt = twins("sgd", (0.1,))
    T.StepLR(t_opt, 3)
    O.StepLR(o_opt, 3)
    t_s, o_s = T.CyclicLR(t_opt, 0.01, 1.0, 4), O.CyclicLR(o_opt, 0.01, 1.0, 4)
    assert o_s.get_last_lr() == t_s.get_last_lr() == [0.1]
    t_opt.step()
    t_s.step()
    o_s.step()
    assert o_s.get_last_lr() == t_s.get_last_lr() == [0.01 + (1.0 - 0.01) * 0.25]


def test_one_cycle_side_effects_like_torch():
    t_opt, o_opt = twins("sgd", (0.5,))
    T.OneCycleLR(t_opt, 1.0, total_steps=10)
    O.OneCycleLR(o_opt, 1.0, total_steps=10)
    for key in ("lr", "initial_lr", "max_lr", "min_lr", "momentum", "max_momentum", "base_momentum"):
        assert o_opt.param_groups[0][key] == t_opt.param_groups[0][key], key
    assert o_opt.param_groups[0]["momentum"] == 0.95  # SGD built without momentum now has momentum


def test_one_cycle_past_the_end_torch_advances_before_raising_we_do_not():
    t_opt, o_opt = twins("sgd")
    t_s, o_s = T.OneCycleLR(t_opt, 1.0, total_steps=5), O.OneCycleLR(o_opt, 1.0, total_steps=5)
    for _ in range(5):
        t_opt.step()
        t_s.step()
        o_s.step()
    assert o_s.get_last_lr() == t_s.get_last_lr()  # last_epoch = 5 = T: the extrapolated value
    with pytest.raises(ValueError):
        t_s.step()
    with pytest.raises(ValueError, match="total_steps=5"):
        o_s.step()
    assert t_s.last_epoch == 6 and o_s.last_epoch == 5


def test_zero_length_one_cycle_phase_torch_divides_by_zero_we_reject():
    t_opt, o_opt = twins("sgd")
    with pytest.raises(ZeroDivisionError):
        T.OneCycleLR(t_opt, 1.0, total_steps=10, pct_start=0.1)
    with pytest.raises(ValueError, match="pct_start=0.1"):
        O.OneCycleLR(o_opt, 1.0, total_steps=10, pct_start=0.1)


def test_constant_factor_zero_torch_divides_by_zero_we_reject():
    t_opt, o_opt = twins("sgd")
    t_s = T.ConstantLR(t_opt, factor=0.0, total_iters=2)
    with pytest.raises(ZeroDivisionError):
        for _ in range(2):
            t_opt.step()
            t_s.step()
    with pytest.raises(ValueError, match="factor"):
        O.ConstantLR(o_opt, factor=0.0, total_iters=2)


def test_warm_restarts_epoch_trap_torch_vs_closed_form():
    """torch's step(121) (T_0=1, T_mult=3) lands a cycle short; 121 plain steps and the closed form agree."""
    t_opt, _ = twins("sgd", (0.1,))
    jump = T.CosineAnnealingWarmRestarts(t_opt, 1, 3, eta_min=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jump.step(121)
    assert jump.get_last_lr() == [0.001]
    t_opt, _ = twins("sgd", (0.1,))
    walk = T.CosineAnnealingWarmRestarts(t_opt, 1, 3, eta_min=0.001)
    for _ in range(121):
        t_opt.step()
        walk.step()
    assert walk.get_last_lr() == [0.1] == [cosine_restarts_schedule(0.1, 1, 3, 0.001)(121)]


def test_cyclic_without_momentum_torch_changes_lr_before_raising_we_do_not():
    t_opt, o_opt = twins("adagrad", (0.5,))
    with pytest.raises(ValueError):
        T.CyclicLR(t_opt, 0.01, 1.0)
    with pytest.raises(ValueError, match="Adagrad"):
        O.CyclicLR(o_opt, 0.01, 1.0)
    assert t_opt.param_groups[0]["lr"] == 0.01 and o_opt.param_groups[0]["lr"] == 0.5
    assert "initial_lr" not in o_opt.param_groups[0]


def test_cosine_keeps_going_past_t_max_like_torch():
    t_opt, o_opt = twins("sgd", (0.1,))
    t_s, o_s = T.CosineAnnealingLR(t_opt, 10), O.CosineAnnealingLR(o_opt, 10)
    for _ in range(20):
        t_opt.step()
        t_s.step()
        o_s.step()
    assert o_s.get_last_lr() == t_s.get_last_lr()
    assert math.isclose(o_s.get_last_lr()[0], 0.1, rel_tol=1e-12)  # back at the base rate at 2·T_max


# ------------------------------------------------------------------------------------------------------------
# Gaps that mutation testing found


class HalfPower:
    """A callable scale_fn with state: torch saves its __dict__ in the state dict, and restores it."""

    def __init__(self, a=0.5):
        self.a = a

    def __call__(self, x):
        return self.a ** x


def test_cyclic_writes_the_momentum_bounds_into_the_groups_and_saves_scale_fn_as_torch():
    t_opt, o_opt = twins("sgd")
    t_fn, o_fn = HalfPower(), HalfPower()
    t_sched = T.CyclicLR(t_opt, 0.01, 0.1, step_size_up=3, scale_fn=t_fn, base_momentum=0.7, max_momentum=0.95)
    o_sched = O.CyclicLR(o_opt, 0.01, 0.1, step_size_up=3, scale_fn=o_fn, base_momentum=0.7, max_momentum=0.95)
    for tg, og in zip(t_opt.param_groups, o_opt.param_groups):
        assert og["max_momentum"] == tg["max_momentum"] == 0.95
        assert og["base_momentum"] == tg["base_momentum"] == 0.7
        assert og["momentum"] == tg["momentum"] == 0.95
    assert o_sched.state_dict()["scale_fn"] == t_sched.state_dict()["_scale_fn_custom"] == {"a": 0.5}
    plain = O.CyclicLR(twins("sgd")[1], 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert plain.state_dict()["scale_fn"] is None          # a plain function is not saved, as in torch
    saved = o_sched.state_dict()
    saved["scale_fn"] = {"a": 0.25}
    o_sched.load_state_dict(saved)
    assert o_fn.a == 0.25                                   # restored into the live callable


def test_plateau_defaults_are_torchs_and_min_lrs_follow_add_param_group():
    t_opt, o_opt = twins("sgd", (0.1,))
    t_sched, o_sched = T.ReduceLROnPlateau(t_opt), O.ReduceLROnPlateau(o_opt)
    for key in ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "eps", "min_lrs",
                "default_min_lr", "best", "mode_worse", "last_epoch"):
        assert getattr(o_sched, key) == getattr(t_sched, key), key
    for opt in (t_opt, o_opt):
        opt.add_param_group({"params": [torch.zeros(2, dtype=torch.float64)] if opt is t_opt else [np.zeros(2)],
                             "lr": 1e-9})
    for metric in [1.0] + [2.0] * 11:                       # the cut on the 11th bad epoch (patience 10)
        t_sched.step(metric)
        o_sched.step(metric)
    assert [g["lr"] for g in o_opt.param_groups] == [g["lr"] for g in t_opt.param_groups]
    assert o_sched.min_lrs == t_sched.min_lrs == [0, 0]
    listed = O.ReduceLROnPlateau(twins("sgd", (0.1,))[1], min_lr=[0.01])
    listed.optimizer.add_param_group({"params": [np.zeros(2)]})
    with pytest.raises(ValueError, match="min_lr was given for 1"):
        for _ in range(12):
            listed.step(1.0)
