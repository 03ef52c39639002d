"""Bound schedulers, no torch: counting, closed forms, chaining, groups, sweeps, momentum, state, errors."""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest

import optimlab
from optimlab import lr_scheduler as L
from optimlab.schedules import cosine_schedule, join_schedules, linear_warmup_schedule, wsd_schedule


def sgd(lrs=(0.1, 0.03), **kw):
    return optimlab.SGD([{"params": [np.zeros(2)], "lr": lr} for lr in lrs], **kw)


def adam(lrs=(0.1, 0.03), **kw):
    return optimlab.Adam([{"params": [np.zeros(2)], "lr": lr} for lr in lrs], **kw)


def rates(opt):
    return [g["lr"] for g in opt.param_groups]


def run(opt, sched, n, metrics=None):
    """The rates of every group after construction and after each of n steps: an array (n + 1, groups)."""
    out = [rates(opt)]
    for k in range(n):
        opt.step([np.zeros_like(p) for g in opt.param_groups for p in g["params"]])
        sched.step() if metrics is None else sched.step(metrics[k])
        out.append(rates(opt))
    return np.array(out, dtype=np.float64)


# Schedulers with a closed form, with arguments, as (name, kwargs, steps)
CLOSED = [
    ("StepLR", dict(step_size=7, gamma=0.7), 100),
    ("MultiStepLR", dict(milestones=[0, 5, 5, 30, 80], gamma=0.5), 100),
    ("ConstantLR", dict(factor=0.3, total_iters=17), 60),
    ("LinearLR", dict(start_factor=0.05, end_factor=0.8, total_iters=40), 80),
    ("ExponentialLR", dict(gamma=0.97), 120),
    ("PolynomialLR", dict(total_iters=50, power=2.5), 80),
    ("CosineAnnealingLR", dict(T_max=37, eta_min=0.001), 200),
    ("CosineAnnealingWarmRestarts", dict(T_0=5, T_mult=2, eta_min=0.0005), 200),
    ("LambdaLR", dict(lr_lambda=lambda k: 0.95**k), 60),
    ("WSD", dict(warmup_steps=10, stable_steps=40, decay_steps=25, decay_type="1-sqrt", min_lr_ratio=0.1),
     100),
    ("OneCycleLR", dict(max_lr=[1.0, 0.3], total_steps=120, three_phase=True), 120),
    ("CyclicLR", dict(base_lr=0.01, max_lr=[1.0, 0.5], step_size_up=7, step_size_down=11, mode="triangular2"),
     100),
]


# ------------------------------------------------------------------------------------------------------------
# Counting


def test_construction_writes_the_first_rate_and_sets_initial_lr():
    opt = sgd()
    sched = L.LinearLR(opt, start_factor=0.5, total_iters=4)
    assert sched.last_epoch == 0 and rates(opt) == [0.05, 0.015] == sched.get_last_lr()
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.03] == sched.base_lrs
    second = L.ConstantLR(opt, factor=0.5)  # only the first scheduler sets initial_lr; both apply step 0
    assert rates(opt) == [0.025, 0.0075] and second.base_lrs == [0.1, 0.03]
    for n in range(1, 6):
        sched.step()
        assert sched.last_epoch == n


def test_get_last_lr_returns_copies():
    opt = optimlab.SGD([{"params": [np.zeros((2, 3))], "lr": np.array([[0.1], [0.2]])}])
    sched = L.ExponentialLR(opt, 0.5)
    last = sched.get_last_lr()
    last[0][0, 0] = 99.0
    assert sched.get_last_lr()[0][0, 0] == 0.1 and opt.param_groups[0]["lr"][0, 0] == 0.1


def test_lambda_uses_lambda_of_zero_for_the_first_update():
    opt = sgd((1.0,))
    sched = L.LambdaLR(opt, lambda k: 1 / (k + 1))
    np.testing.assert_allclose(run(opt, sched, 3)[:, 0], [1, 1 / 2, 1 / 3, 1 / 4])
    opt = sgd((1.0,))
    warm = L.LambdaLR(opt, linear_warmup_schedule(1.0, 4))
    assert rates(opt) == [0.0]  # a warm-up from 0: the first update uses a zero rate
    del warm


def test_resume_with_last_epoch_needs_initial_lr():
    opt = sgd()
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"last_epoch=3.*initial_lr"):
        L.StepLR(opt, 2, last_epoch=3)
    unchanged(opt, before)
    L.StepLR(opt, 2)
    sched = L.StepLR(opt, 2, last_epoch=3)  # torch's off-by-one: moves to 4 and applies another decay
    assert sched.last_epoch == 4 and rates(opt) == pytest.approx([0.01, 0.003])


# ------------------------------------------------------------------------------------------------------------
# Bound schedulers against their closed forms (the pure functions)


@pytest.mark.parametrize("name, kwargs, n", CLOSED, ids=[c[0] for c in CLOSED])
def test_bound_scheduler_equals_its_closed_form(name, kwargs, n):
    opt = sgd()
    sched = getattr(L, name)(opt, **kwargs)
    bound = run(opt, sched, n)
    k = np.arange(n + 1)
    forms = sched.closed_form()
    assert len(forms) == 2
    for i, form in enumerate(forms):
        closed = form(k)
        np.testing.assert_allclose(bound[:, i], closed, rtol=1e-12, atol=1e-15 * np.max(np.abs(closed)))
        np.testing.assert_array_equal(closed, [form(int(j)) for j in k])


def test_closed_forms_are_the_schedules_module_functions():
    opt = sgd()
    sched = L.CosineAnnealingLR(opt, 30, 0.01)
    for form, base in zip(sched.closed_form(), [0.1, 0.03]):
        np.testing.assert_array_equal(form(np.arange(90)), cosine_schedule(base, 30, 0.01)(np.arange(90)))
    opt = sgd()
    sched = L.WSD(opt, 5, 10, 5, "linear", 0.2)
    np.testing.assert_array_equal(sched.closed_form()[1](np.arange(30)),
                                  wsd_schedule(0.03, 5, 10, 5, "linear", 0.2)(np.arange(30)))
    assert sched.multiplier is sched.lr_lambdas[0]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", ["OneCycleLR", "CyclicLR"])
def test_cycled_momentum_equals_its_closed_form(name, kind):
    opt = sgd() if kind == "sgd" else adam()
    kwargs = dict(CLOSED[[c[0] for c in CLOSED].index(name)][1])
    sched = getattr(L, name)(opt, **kwargs)
    n = 100
    seen = []
    for _ in range(n + 1):
        seen.append([g["betas"][0] if kind == "adam" else g["momentum"] for g in opt.param_groups])
        if "betas" in opt.param_groups[0]:
            assert all(g["betas"][1] == 0.999 for g in opt.param_groups)
        if len(seen) <= n:
            opt.step([np.zeros(2), np.zeros(2)])
            sched.step()
    for i, form in enumerate(sched.momentum_closed_form()):
        np.testing.assert_allclose(np.array(seen)[:, i], form(np.arange(n + 1)), rtol=1e-12)


def test_sequential_equals_joined_closed_forms():
    opt = adam()
    children = [L.LinearLR(opt, 0.1, 1.0, 10), L.CosineAnnealingLR(opt, 40, 1e-4), L.ExponentialLR(opt, 0.97),
                L.CosineAnnealingWarmRestarts(opt, 6, 2)]
    sched = L.SequentialLR(opt, children, [10, 50, 70])
    bound = run(opt, sched, 200)
    for i, form in enumerate(sched.closed_form()):
        np.testing.assert_allclose(bound[:, i], form(np.arange(201)), rtol=1e-12, atol=1e-18)
    # which is the course's warm-up + cosine on the first stretch
    head = join_schedules([c.closed_form()[0] for c in children[:2]], [10])(np.arange(50))
    np.testing.assert_allclose(bound[:50, 0], head, rtol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# Recursive (chainable) versus closed form: they agree unless something else touches the rate


CHAINABLE = [c for c in CLOSED if c[0] in ("StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
                                           "PolynomialLR", "CosineAnnealingLR")]


@pytest.mark.parametrize("name, kwargs, n", CHAINABLE, ids=[c[0] for c in CHAINABLE])
def test_recursive_form_carries_an_external_change_forward(name, kwargs, n):
    opt = sgd()
    if name == "CosineAnnealingLR":
        # up to T_max only: past it, torch's recursion adds (B − eta_min)(1 − cos(π/T))/2 at k = T + 1, an
        # absolute amount computed from the base rate, so the change no longer simply scales the curve
        kwargs, n = {**kwargs, "eta_min": 0.0}, kwargs["T_max"]
    sched = getattr(L, name)(opt, **kwargs)
    before = np.array([form(np.arange(n + 1)) for form in sched.closed_form()]).T
    j = 3
    out = [rates(opt)]
    for k in range(n):
        sched.step()
        if k + 1 == j:  # someone halves the rate (a manual edit, a plateau cut, a second scheduler)
            for g in opt.param_groups:
                g["lr"] = g["lr"] / 2
        out.append(rates(opt))
    out = np.array(out)
    closed = np.array([form(np.arange(n + 1)) for form in sched.closed_form()]).T
    np.testing.assert_allclose(out[:j], closed[:j], rtol=1e-12)
    np.testing.assert_allclose(out[j:], closed[j:] / 2, rtol=1e-12, atol=1e-18)  # the change carries forward
    # the closed form comes from the base rates: the external change did not alter it
    np.testing.assert_array_equal(closed, before)


def test_cosine_external_change_example():
    """The reference sheet's example: B = 0.1, T = 10, the rate halved after step 1."""
    opt = sgd((0.1,))
    sched = L.CosineAnnealingLR(opt, 10)
    sched.step()
    opt.param_groups[0]["lr"] /= 2
    sched.step()
    assert rates(opt)[0] == pytest.approx(0.0452, abs=1e-4)
    assert sched.closed_form()[0](2) == pytest.approx(0.0905, abs=1e-4)


def test_absolute_schedulers_ignore_an_external_change():
    opt = sgd()
    sched = L.LambdaLR(opt, lambda k: 0.9**k)
    sched.step()
    opt.param_groups[0]["lr"] = 123.0
    sched.step()
    assert rates(opt) == pytest.approx([0.1 * 0.81, 0.03 * 0.81])


def test_two_schedulers_on_one_optimizer_multiply():
    opt = sgd((1.0,))
    a, b = L.ExponentialLR(opt, 0.9), L.StepLR(opt, 2, 0.5)
    for _ in range(6):
        a.step()
        b.step()
    assert rates(opt)[0] == pytest.approx(0.9**6 * 0.5**3)
    assert a.closed_form()[0](6) == pytest.approx(0.9**6)  # the closed forms know nothing of each other


# ------------------------------------------------------------------------------------------------------------
# Groups and sweeps


def test_each_group_follows_its_own_base_rate():
    opt = optimlab.SGD([{"params": [np.zeros(2)], "lr": 0.1}, {"params": [np.zeros(3)], "lr": 0.001},
                        {"params": [np.zeros(1)], "lr": 0.5}])
    sched = L.CosineAnnealingLR(opt, 20)
    out = run(opt, sched, 20)
    for i, base in enumerate([0.1, 0.001, 0.5]):
        expected = cosine_schedule(base, 20)(np.arange(21))
        np.testing.assert_allclose(out[:, i], expected, rtol=1e-12, atol=1e-18)


SWEEP = [  # one-cycle and cyclic take their rates from max_lr/base_lr: see test_sweep_of_hyperparameters
    *[c for c in CLOSED if c[0] not in ("OneCycleLR", "CyclicLR")],
    ("ReduceLROnPlateau", dict(factor=0.5, patience=2, cooldown=1, min_lr=0.002), 60),
]


@pytest.mark.parametrize("name, kwargs, n", SWEEP, ids=[c[0] for c in SWEEP])
def test_sweep_rows_equal_scalar_runs(name, kwargs, n):
    base = np.array([0.2, 0.05, 0.01])
    kw = kwargs
    metrics = np.sin(np.arange(n) / 3.0) + np.arange(n) * 0.01 if name == "ReduceLROnPlateau" else None
    sweep_opt = optimlab.Adam([{"params": [np.zeros((3, 4))], "lr": base[:, None]}])
    sweep = run(sweep_opt, getattr(L, name)(sweep_opt, **kw), n, metrics)
    assert sweep.shape == (n + 1, 1, 3, 1)
    for b, lr in enumerate(base):
        opt = optimlab.Adam([{"params": [np.zeros(4)], "lr": float(lr)}])
        scalar = run(opt, getattr(L, name)(opt, **kw), n, metrics)
        np.testing.assert_array_equal(sweep[:, 0, b, 0], scalar[:, 0])


def test_sweep_of_hyperparameters():
    """Array-valued max_lr and momenta: a one-cycle sweep over three peaks, one row per run."""
    peaks = np.array([[1.0], [0.3], [0.1]])
    opt = optimlab.SGD([{"params": [np.zeros((3, 2))], "lr": 0.1}])
    sched = L.OneCycleLR(opt, peaks, total_steps=50, base_momentum=np.array([[0.8], [0.85], [0.9]]))
    out = run(opt, sched, 50)
    for b in range(3):
        expected = sched.closed_form()[0](np.arange(51))[b]
        np.testing.assert_allclose(out[:, 0, b, 0], expected, rtol=1e-12)
    assert opt.param_groups[0]["momentum"].shape == (3, 1)


# ------------------------------------------------------------------------------------------------------------
# Momentum cycling and its side effects


def test_one_cycle_turns_on_sgd_momentum_and_sets_group_keys():
    opt = sgd((0.5,))
    assert opt.param_groups[0]["momentum"] == 0
    L.OneCycleLR(opt, 2.0, total_steps=10)
    g = opt.param_groups[0]
    assert g["momentum"] == 0.95 and g["max_momentum"] == 0.95 and g["base_momentum"] == 0.85
    assert g["initial_lr"] == 2.0 / 25 == pytest.approx(g["lr"], rel=1e-14)
    assert g["max_lr"] == 2.0 and g["min_lr"] == 2.0 / 25 / 1e4


def test_cycling_adam_changes_beta1_only():
    opt = adam((0.5,), betas=(0.7, 0.95))
    sched = L.CyclicLR(opt, 0.01, 0.1, 4)
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)
    sched.step()
    assert opt.param_groups[0]["betas"][1] == 0.95 and opt.param_groups[0]["betas"][0] < 0.9


def test_rmsprop_momentum_is_cycled():
    opt = optimlab.RMSprop([np.zeros(2)], lr=0.01)
    L.OneCycleLR(opt, 0.1, total_steps=20)
    assert opt.param_groups[0]["momentum"] == 0.95


def test_cycle_momentum_off_leaves_momentum_alone():
    opt = sgd((0.5,), momentum=0.3)
    sched = L.OneCycleLR(opt, 1.0, total_steps=10, cycle_momentum=False)
    sched.step()
    assert opt.param_groups[0]["momentum"] == 0.3 and "max_momentum" not in opt.param_groups[0]


def test_one_cycle_reads_its_group_keys_live():
    opt = sgd((0.5,))
    sched = L.OneCycleLR(opt, 1.0, total_steps=10, anneal_strategy="linear")
    opt.param_groups[0]["max_lr"] = 2.0  # torch reads max_lr/initial_lr/min_lr from the groups at every step
    sched.step()
    assert rates(opt)[0] == pytest.approx(0.04 + (2.0 - 0.04) * 1 / 2)


# ------------------------------------------------------------------------------------------------------------
# ReduceLROnPlateau


def test_plateau_cuts_on_the_patience_plus_first_bad_call():
    opt = sgd((1.0,))
    sched = L.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    assert rates(opt) == [1.0]
    sched.step(1.0)
    assert rates(opt) == [0.5] and sched.num_bad_epochs == 0 and sched.last_epoch == 4


def test_plateau_cooldown_ignores_bad_calls():
    opt = sgd((1.0,))
    sched = L.ReduceLROnPlateau(opt, factor=0.5, patience=0, cooldown=2)
    sched.step(1.0)
    sched.step(2.0)
    assert rates(opt) == [0.5] and sched.in_cooldown
    sched.step(3.0)
    sched.step(3.0)
    assert rates(opt) == [0.5] and not sched.in_cooldown
    sched.step(3.0)
    assert rates(opt) == [0.25]


def test_plateau_min_lr_per_group_and_eps():
    opt = sgd((1.0, 0.01))
    sched = L.ReduceLROnPlateau(opt, factor=0.1, patience=0, min_lr=[0.05, 0.0], eps=2e-3)
    sched.step(1.0)
    sched.step(1.0)
    assert rates(opt) == pytest.approx([0.1, 0.001])
    sched.step(1.0)
    # group 0 is floored at 0.05; group 1's cut (0.0009) is below eps, so it is skipped
    assert rates(opt) == pytest.approx([0.05, 0.001])


@pytest.mark.parametrize("mode, threshold_mode, seq, cut", [
    ("max", "abs", [1.0, 1.05, 1.2], False),
    ("max", "abs", [1.0, 1.05, 1.09], True),
    ("max", "rel", [10.0, 10.5, 11.5], False),
    ("min", "abs", [1.0, 0.95, 0.8], False),
    ("min", "rel", [-10.0, -9.5, -9.0], False),  # negative metrics: rel "improvement" while getting worse
])
def test_plateau_modes(mode, threshold_mode, seq, cut):
    opt = sgd((1.0,))
    sched = L.ReduceLROnPlateau(opt, mode=mode, threshold_mode=threshold_mode, threshold=0.1, patience=1,
                                factor=0.5)
    for m in seq:
        sched.step(m)
    assert (rates(opt) == [0.5]) is cut


# ------------------------------------------------------------------------------------------------------------
# State


def build(name, opt):
    if name == "SequentialLR":
        return L.SequentialLR(opt, [L.LinearLR(opt, 0.1, 1.0, 10), L.CosineAnnealingLR(opt, 40)], [10])
    if name == "ReduceLROnPlateau":
        return L.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1)
    kwargs = dict(CLOSED[[c[0] for c in CLOSED].index(name)][1])
    if name == "LambdaLR":
        kwargs["lr_lambda"] = [cosine_schedule(1.0, 30), _halving]
    return getattr(L, name)(opt, **kwargs)


def _halving(k):
    return 0.5 ** (k // 10)


@pytest.mark.parametrize("name", [c[0] for c in CLOSED] + ["SequentialLR", "ReduceLROnPlateau"])
def test_state_dict_through_pickle_continues_identically(name):
    metrics = np.cos(np.arange(100) / 4.0)
    opt = adam()
    sched = build(name, opt)
    reference = run(opt, sched, 100, metrics if name == "ReduceLROnPlateau" else None)
    opt = adam()
    sched = build(name, opt)
    first = run(opt, sched, 40, metrics if name == "ReduceLROnPlateau" else None)
    blob = pickle.dumps((opt.param_groups[0] | {"params": None}, opt.param_groups[1] | {"params": None},
                         sched.state_dict()))
    opt = adam()
    sched = build(name, opt)
    g0, g1, state = pickle.loads(blob)
    for group, saved in zip(opt.param_groups, (g0, g1)):
        group.update({k: v for k, v in saved.items() if k != "params"})
    sched.load_state_dict(state)
    rest = run(opt, sched, 60, metrics[40:] if name == "ReduceLROnPlateau" else None)
    np.testing.assert_array_equal(np.concatenate([first, rest[1:]]), reference)


def test_lambda_state_keeps_callable_objects_not_functions():
    opt = sgd()
    sched = L.LambdaLR(opt, [cosine_schedule(1.0, 30), _halving])
    state = sched.state_dict()
    assert state["lr_lambdas"][1] is None and state["lr_lambdas"][0]["params"]["T_max"] == 30


def test_state_dict_is_a_copy():
    opt = optimlab.SGD([{"params": [np.zeros((2, 1))], "lr": np.array([[0.1], [0.2]])}])
    sched = L.StepLR(opt, 2)
    state = sched.state_dict()
    state["base_lrs"][0][0, 0] = 5.0
    assert sched.base_lrs[0][0, 0] == 0.1


def test_optimizer_state_dict_round_trips_scheduler_keys():
    opt = sgd()
    L.OneCycleLR(opt, 1.0, total_steps=10)
    state = opt.state_dict()
    fresh = sgd()
    L.OneCycleLR(fresh, 1.0, total_steps=10)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["max_lr"] == 1.0


# ------------------------------------------------------------------------------------------------------------
# Bad input: a named error, and nothing changes


def snapshot(opt, *scheds):
    return copy.deepcopy(opt.param_groups), [pickle.dumps(s.state_dict()) for s in scheds]


def unchanged(opt, before, *scheds):
    groups, states = before
    assert len(opt.param_groups) == len(groups)
    for g, h in zip(opt.param_groups, groups):
        assert g.keys() == h.keys()
        for key in g:
            if key != "params":
                np.testing.assert_array_equal(np.asarray(g[key], dtype=object),
                                              np.asarray(h[key], dtype=object))
    assert [pickle.dumps(s.state_dict()) for s in scheds] == states


BAD_CONSTRUCTION = [
    ("CosineAnnealingLR", dict(T_max=0), ValueError, ["T_max", "0"]),
    ("CosineAnnealingLR", dict(T_max=-5), ValueError, ["T_max", "-5"]),
    ("CosineAnnealingLR", dict(T_max=10.0), TypeError, ["T_max", "10.0"]),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=-1.0), ValueError, ["eta_min", "-1.0"]),
    ("CosineAnnealingWarmRestarts", dict(T_0=0), ValueError, ["T_0", "0"]),
    ("CosineAnnealingWarmRestarts", dict(T_0=5, T_mult=0), ValueError, ["T_mult", "0"]),
    ("CosineAnnealingWarmRestarts", dict(T_0=5, T_mult=2.5), TypeError, ["T_mult", "2.5"]),
    ("StepLR", dict(step_size=0), ValueError, ["step_size", "0"]),
    ("StepLR", dict(step_size=3, gamma=-0.1), ValueError, ["gamma", "-0.1"]),
    ("MultiStepLR", dict(milestones=[10, 5]), ValueError, ["milestones", "[10, 5]"]),
    ("MultiStepLR", dict(milestones=[3, -1]), ValueError, ["milestones[1]", "-1"]),
    ("ConstantLR", dict(factor=0.0), ValueError, ["factor", "0.0"]),
    ("ConstantLR", dict(factor=1.5), ValueError, ["factor", "1.5"]),
    ("ConstantLR", dict(total_iters=0), ValueError, ["total_iters", "0"]),
    ("LinearLR", dict(start_factor=0.0), ValueError, ["start_factor", "0.0"]),
    ("LinearLR", dict(end_factor=1.5), ValueError, ["end_factor", "1.5"]),
    ("ExponentialLR", dict(gamma=0.0), ValueError, ["gamma", "0.0"]),
    ("ExponentialLR", dict(gamma=float("nan")), ValueError, ["gamma", "nan"]),
    ("PolynomialLR", dict(total_iters=0), ValueError, ["total_iters", "0"]),
    ("PolynomialLR", dict(power=-2.0), ValueError, ["power", "-2.0"]),
    ("LambdaLR", dict(lr_lambda=3.0), TypeError, ["lr_lambda", "3.0"]),
    ("LambdaLR", dict(lr_lambda=[abs]), ValueError, ["lr_lambda", "2", "1 values"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=0), ValueError, ["total_steps", "0"]),
    ("OneCycleLR", dict(max_lr=1.0), ValueError, ["total_steps=None", "epochs=None"]),
    ("OneCycleLR", dict(max_lr=1.0, epochs=0, steps_per_epoch=10), ValueError, ["epochs", "0"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=100, pct_start=0.0), ValueError, ["pct_start", "0.0"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=100, pct_start=1.0), ValueError, ["pct_start", "1.0"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=100, pct_start=-0.2), ValueError, ["pct_start", "-0.2"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, pct_start=0.1), ValueError,
     ["pct_start=0.1", "zero length"]),
    ("OneCycleLR", dict(max_lr=[1.0, 2.0, 3.0], total_steps=10), ValueError, ["max_lr", "2", "3 values"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, anneal_strategy="cosine"), ValueError,
     ["anneal_strategy", "'cosine'"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, div_factor=0.0), ValueError, ["div_factor", "0.0"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, max_momentum=1.2), ValueError, ["max_momentum", "1.2"]),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=10, base_momentum=[0.8]), ValueError,
     ["base_momentum", "[0.8]"]),
    ("CyclicLR", dict(base_lr=0.01, max_lr=1.0, step_size_up=0), ValueError, ["step_size_up", "0"]),
    ("CyclicLR", dict(base_lr=[0.01], max_lr=1.0), ValueError, ["base_lr", "[0.01]"]),
    ("CyclicLR", dict(base_lr=0.01, max_lr=(1.0, 2.0, 3.0)), ValueError, ["max_lr", "(1.0, 2.0, 3.0)"]),
    ("CyclicLR", dict(base_lr=0.01, max_lr=1.0, mode="sawtooth"), ValueError, ["mode", "'sawtooth'"]),
    ("CyclicLR", dict(base_lr=0.01, max_lr=1.0, gamma=0.0), ValueError, ["gamma", "0.0"]),
    ("CyclicLR", dict(base_lr=-0.01, max_lr=1.0), ValueError, ["base_lr", "-0.01"]),
    ("WSD", dict(warmup_steps=5, stable_steps=10, decay_steps=0), ValueError, ["decay_steps", "0"]),
    ("WSD", dict(warmup_steps=-1, stable_steps=10, decay_steps=5), ValueError, ["warmup_steps", "-1"]),
    ("WSD", dict(warmup_steps=5, stable_steps=10, decay_steps=5, decay_type="exp"), ValueError,
     ["decay_type", "'exp'"]),
    ("WSD", dict(warmup_steps=5, stable_steps=10, decay_steps=5, min_lr_ratio=1.5), ValueError,
     ["min_lr_ratio", "1.5"]),
    ("ReduceLROnPlateau", dict(factor=1.0), ValueError, ["factor", "1.0"]),
    ("ReduceLROnPlateau", dict(factor=-0.5), ValueError, ["factor", "-0.5"]),
    ("ReduceLROnPlateau", dict(mode="mean"), ValueError, ["mode", "'mean'"]),
    ("ReduceLROnPlateau", dict(threshold_mode="relative"), ValueError, ["threshold_mode", "'relative'"]),
    ("ReduceLROnPlateau", dict(patience=-1), ValueError, ["patience", "-1"]),
    ("ReduceLROnPlateau", dict(cooldown=1.5), TypeError, ["cooldown", "1.5"]),
    ("ReduceLROnPlateau", dict(threshold=-0.1), ValueError, ["threshold", "-0.1"]),
    ("ReduceLROnPlateau", dict(min_lr=[0.0, 0.0, 0.0]), ValueError, ["min_lr", "2", "3 values"]),
    ("ReduceLROnPlateau", dict(eps=float("nan")), ValueError, ["eps", "nan"]),
    ("StepLR", dict(step_size=2, last_epoch=-2), ValueError, ["last_epoch", "-2"]),
]


@pytest.mark.parametrize("name, kwargs, error, words", BAD_CONSTRUCTION,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_CONSTRUCTION)])
def test_bad_construction_names_the_argument_and_changes_nothing(name, kwargs, error, words):
    opt = sgd()
    earlier = L.StepLR(opt, 3, 0.5)  # an earlier scheduler: its state must survive too
    for _ in range(4):
        earlier.step()
    before = snapshot(opt, earlier)
    with pytest.raises(error) as info:
        getattr(L, name)(opt, **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    unchanged(opt, before, earlier)


@pytest.mark.parametrize("name", ["OneCycleLR", "CyclicLR"])
def test_momentum_cycling_needs_momentum_or_betas(name):
    opt = optimlab.Adagrad([{"params": [np.zeros(2)], "lr": 0.5}, {"params": [np.zeros(2)], "lr": 0.1}])
    before = snapshot(opt)
    args = dict(max_lr=1.0, total_steps=10) if name == "OneCycleLR" else dict(base_lr=0.01, max_lr=1.0)
    with pytest.raises(ValueError, match="cycle_momentum.*Adagrad"):
        getattr(L, name)(opt, **args)
    unchanged(opt, before)
    getattr(L, name)(opt, cycle_momentum=False, **args)  # without cycling it is fine


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="optimizer.*list"):
        L.StepLR([np.zeros(2)], 2)
    with pytest.raises(TypeError, match="optimizer"):
        L.ReduceLROnPlateau(object())


def test_one_cycle_past_total_steps_raises_and_changes_nothing():
    opt = sgd()
    sched = L.OneCycleLR(opt, 1.0, total_steps=5)
    for _ in range(5):
        sched.step()
    before = snapshot(opt, sched)
    with pytest.raises(ValueError, match=r"total_steps=5.*last_epoch=6"):
        sched.step()
    unchanged(opt, before, sched)
    assert sched.last_epoch == 5


def test_failing_lambda_changes_nothing():
    def boom(k):
        if k == 3:
            raise ArithmeticError("no rate at step 3")
        return 1.0 / (k + 1)

    opt = sgd()
    sched = L.LambdaLR(opt, [lambda k: 1.0, boom])
    sched.step()
    sched.step()
    before = snapshot(opt, sched)
    with pytest.raises(ArithmeticError):
        sched.step()
    unchanged(opt, before, sched)
    assert sched.last_epoch == 2


@pytest.mark.parametrize("metric, error, words", [
    (float("nan"), ValueError, ["metrics", "nan"]),
    (np.float64("nan"), ValueError, ["metrics", "nan"]),
    (None, TypeError, ["metrics", "None"]),
    ("low", TypeError, ["metrics", "'low'"]),
    (np.array([1.0, 2.0]), TypeError, ["metrics", "array"]),
])
def test_plateau_bad_metric_names_it_and_changes_nothing(metric, error, words):
    opt = sgd()
    sched = L.ReduceLROnPlateau(opt, patience=0)
    sched.step(1.0)
    before = snapshot(opt, sched)
    with pytest.raises(error) as info:
        sched.step(metric)
    for word in words:
        assert word in str(info.value)
    unchanged(opt, before, sched)


def test_plateau_without_a_metric():
    sched = L.ReduceLROnPlateau(sgd())
    with pytest.raises(TypeError, match="metrics"):
        sched.step()


def test_sequential_bad_input_changes_nothing():
    opt = sgd()
    a, b = L.LinearLR(opt, 0.5, 1.0, 5), L.ExponentialLR(opt, 0.9)
    before = snapshot(opt, a, b)
    for schedulers, milestones, error, words in [
        ([a, b], [5, 3], ValueError, ["milestones", "[5, 3]"]),
        ([a, b], [0], ValueError, ["milestones[0]", "0"]),
        ([a, b], [2, 4], ValueError, ["milestones", "[2, 4]"]),
        ([], [], ValueError, ["schedulers", "[]"]),
        ([a, L.ReduceLROnPlateau(opt)], [3], TypeError, ["schedulers[1]", "ReduceLROnPlateau"]),
        ([a, L.StepLR(sgd(), 2)], [3], ValueError, ["schedulers[1]", "another optimizer"]),
    ]:
        with pytest.raises(error) as info:
            L.SequentialLR(opt, schedulers, milestones)
        for word in words:
            assert word in str(info.value), (word, str(info.value))
        unchanged(opt, before, a, b)


def test_bad_state_dict_changes_nothing():
    opt = sgd()
    sched = L.CosineAnnealingLR(opt, 10)
    sched.step()
    before = snapshot(opt, sched)
    other = L.StepLR(sgd(), 3).state_dict()
    with pytest.raises(ValueError, match="CosineAnnealingLR.*missing keys.*T_max"):
        sched.load_state_dict(other)
    with pytest.raises(TypeError, match="state_dict"):
        sched.load_state_dict([1, 2])
    unchanged(opt, before, sched)


def test_schedulers_export_torch_names():
    for name in L.__all__:
        assert isinstance(getattr(L, name), type)
    assert math.isclose(L.CosineAnnealingLR(sgd((0.1,)), 10).get_last_lr()[0], 0.1)


def test_linear_total_iters_zero_is_refused():
    """torch accepts total_iters=0 and then stays at start_factor for ever (its closed form divides by zero);
    here it is an error that names the argument."""
    with pytest.raises(ValueError, match="total_iters must be a positive integer, got 0"):
        L.LinearLR(sgd(), start_factor=0.5, total_iters=0)
    with pytest.raises(ValueError, match="total_iters must be a positive integer, got 0"):
        L.ConstantLR(sgd(), factor=0.5, total_iters=0)


@pytest.mark.parametrize("name, kwargs, field, value, pattern", [
    ("StepLR", dict(step_size=2), "gamma", -5.0, "gamma must be finite > 0"),
    ("ExponentialLR", dict(gamma=0.9), "gamma", 10**400, r"state_dict\['gamma'\] must fit in a float64"),
    ("CosineAnnealingLR", dict(T_max=10), "T_max", 0, "T_max must be a positive integer"),
    ("CosineAnnealingLR", dict(T_max=10), "eta_min", float("nan"), r"state_dict\['eta_min'\] must not be NaN"),
    ("LinearLR", {}, "total_iters", 2.5, "total_iters must be an integer"),
    ("StepLR", dict(step_size=2), "base_lrs", [0.1], r"state_dict\['base_lrs'\] must be a list of 2"),
    ("StepLR", dict(step_size=2), "last_epoch", True, r"state_dict\['last_epoch'\]"),
    ("ReduceLROnPlateau", {}, "factor", 2.0, r"factor must be finite in \[0, 1\)"),
    ("ReduceLROnPlateau", {}, "num_bad_epochs", -1, "num_bad_epochs must be >= 0"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1), "max_momentums", [2.0, 0.9], r"momentum of group 0.*\[0, 1\]"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1), "scale_fn", 3, r"state_dict\['scale_fn'\]"),
])
def test_a_scheduler_state_dict_is_checked_before_anything_is_loaded(name, kwargs, field, value, pattern):
    opt = sgd(momentum=0.9)
    sched = getattr(L, name)(opt, **kwargs)
    sched.step(1.0) if name == "ReduceLROnPlateau" else sched.step()
    before, groups = copy.deepcopy(sched.__dict__.copy() | {"optimizer": None}), copy.deepcopy(opt.param_groups)
    saved = sched.state_dict()
    saved[field] = value
    with pytest.raises((ValueError, TypeError), match=pattern):
        sched.load_state_dict(saved)
    after = sched.__dict__.copy() | {"optimizer": None}
    assert after.keys() == before.keys() and all(
        np.array_equal(after[k], before[k]) if isinstance(before[k], float) else after[k] == before[k]
        for k in before if not callable(before[k]))
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in groups]


def test_loaded_numpy_scalars_are_held_as_the_scheduler_holds_its_own():
    """A state dict whose numbers are numpy scalars (a float16 eta_min, an int64 step) loads as Python numbers,
    as the constructor converts them: the rates stay float64 (a float16 eta_min made every later rate a float16,
    and a large one printed numpy's overflow warning while the load was checked)."""
    opt = sgd()
    sched = L.CosineAnnealingLR(opt, T_max=5, eta_min=0.0)
    saved = sched.state_dict()
    saved.update(eta_min=np.float16(0.1), last_epoch=np.int64(0), base_lrs=[np.float32(0.1), np.float16(0.03)])
    sched.load_state_dict(saved)
    assert type(sched.eta_min) is float and type(sched.last_epoch) is int
    assert [type(b) for b in sched.base_lrs] == [float, float]
    for _ in range(3):
        sched.step()
    assert all(type(g["lr"]) is float for g in opt.param_groups)
    large = L.CosineAnnealingLR(sgd(), T_max=5, eta_min=72438.0)
    for _ in range(4):
        large.step()
    saved = large.state_dict()
    saved["eta_min"] = np.float16(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        large.load_state_dict(saved)
    assert large.eta_min == float(np.float16(0.1))


def test_a_rate_that_is_not_finite_is_refused_naming_the_schedulers_own_arguments():
    with pytest.raises(ValueError, match=r"lr'\] to -inf at step 0: .*\(T_0, T_mult, eta_min\)"):
        L.CosineAnnealingWarmRestarts(sgd(), 3, eta_min=1e308)
    sched = L.ExponentialLR(sgd(), 1e300)
    sched.step()
    with pytest.raises(ValueError, match=r"to inf at step 2: .*check its arguments \(gamma\)"):
        sched.step()


@pytest.mark.parametrize("field, value, pattern", [
    ("T_cur", -5.7e307, "T_cur must be an integer, got float"), ("T_cur", -1, "T_cur must be >= 0, got -1"),
    ("T_i", 0, "T_i must be a positive integer, got 0"), ("T_i", 2.5, "T_i must be an integer"),
])
def test_warm_restarts_counters_are_checked_on_loading(field, value, pattern):
    """A loaded T_cur or T_i is an integer count, as step() keeps it (a huge negative T_cur printed numpy's
    warning for the cosine of an inexact angle while the load was checked)."""
    sched = L.CosineAnnealingWarmRestarts(sgd(), T_0=3, T_mult=2)
    sched.step()
    saved = sched.state_dict()
    saved[field] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=pattern):
            sched.load_state_dict(saved)
    assert sched.T_cur == 1 and sched.T_i == 3


@pytest.mark.parametrize("name, kwargs", [("OneCycleLR", dict(max_lr=1.0, total_steps=10)),
                                          ("CyclicLR", dict(base_lr=0.01, max_lr=0.1))])
def test_cycling_betas_without_betas_in_the_groups_is_named(name, kwargs):
    """use_beta1 loaded for SGD (no betas), or betas deleted by hand from an Adam group: a ValueError naming
    use_beta1 and betas, nothing changed (a KeyError leaked before)."""
    opt = sgd(momentum=0.9)
    sched = getattr(L, name)(opt, **kwargs)
    saved = sched.state_dict()
    saved["use_beta1"] = True
    with pytest.raises(ValueError, match=r"state_dict holds .* cycles betas\[0\] \(use_beta1\)"):
        sched.load_state_dict(saved)
    assert sched.use_beta1 is False
    adam = optimlab.Adam([np.zeros(2)], lr=0.1)
    sched = getattr(L, name)(adam, **kwargs)
    del adam.param_groups[0]["betas"]
    before = dict(sched.__dict__)
    with pytest.raises(ValueError, match=r"a param group has no 'betas'"):
        sched.step()
    assert sched.__dict__ == before
