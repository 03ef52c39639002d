"""Fuzzing (hypothesis) of every public entry point with hostile input, asserting the package's two promises:

1. a bad input is rejected with a ValueError or TypeError (exactly those types, no OverflowError, IndexError,
   KeyError, AxisError or numpy UFuncTypeError) whose message is the package's own, not numpy's, and no numpy
   warning is printed for it;
2. a call that raises changes nothing: parameters, gradients, optimizer and scheduler state, param_groups.

A call that succeeds must leave valid state behind: the next valid step still runs, and float32 stays float32.
Derandomized with a fixed budget per test (the same examples on every run and machine; the whole module takes
about a minute and a half on one core), so it belongs in ``make unit``.
"""

from __future__ import annotations

import copy
import decimal
import fractions
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimlab as ol
from optimlab import experiments, lr_scheduler, problems, schedules

FUZZ = settings(max_examples=4000, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion", "SophiaG"]
# phrases of numpy's and Python's own messages: the package must catch these inputs first and name the argument
FOREIGN = ("ufunc", "Cannot cast", "could not broadcast", "operands could not", "object is not iterable",
           "unsupported operand", "not supported between", "int too large", "truth value of an array")

# -- hostile values ---------------------------------------------------------------------------------------------

huge_ints = st.sampled_from([10**400, -(10**400), 2**1024, 2**63, 2**53 + 1])
odd_numbers = st.sampled_from([
    True, False, np.bool_(True), fractions.Fraction(1, 10), decimal.Decimal("0.1"), 1 + 0j, 0.5j,
    np.complex128(0.1), np.array(0.1), np.array([0.1]), np.array([[0.1]]), np.array(["a"]), np.array([None]),
    np.array([True]), np.longdouble("1e400"), np.float16(0.1), np.float32(0.1), np.int64(3), np.uint8(2),
    "0.1", "inf", None, [0.1], (0.1,), {}, object(), np.nan, np.inf, -np.inf, -0.0, 1e308, 5e-324,
])
plain_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6))
hostile = st.one_of(huge_ints, odd_numbers, plain_numbers)


def _snapshot(x):
    """A copy for comparing before and after: arrays and containers copied, other values kept as they are."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, dict):
        return {k: _snapshot(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_snapshot(v) for v in x)
    return x


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if a is b:
        return True
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - values that do not compare: only the same object counts as unchanged
        return False


def attempt(call, *watched, allowed=(ValueError, TypeError)):
    """Run ``call``; if it raises, check the error's type (one of ``allowed``) and message, that no warning was
    printed and that every ``watched()`` value is exactly as before. Returns True if the call succeeded."""
    before = [_snapshot(w()) for w in watched]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except Exception as error:  # noqa: BLE001 - the type is what is checked
            assert type(error) in allowed, f"{type(error).__name__} leaked: {error}"
            message = str(error)
            assert message and not any(p in message for p in FOREIGN), f"a foreign message: {message}"
            assert not caught, f"a warning for a rejected input: {[str(w.message) for w in caught]}"
            for w, old in zip(watched, before):
                assert _same(w(), old), "a call that raised changed something"
            return False
    return True


def attempt_named(call, names, *watched, allowed=(ValueError, TypeError)):
    """:func:`attempt`, and a raised error's message must name one of ``names`` (the argument that was wrong)."""
    raised = []

    def recorded():
        try:
            call()
        except Exception as error:
            raised.append(error)
            raise
    if attempt(recorded, *watched, allowed=allowed):
        return True
    message = str(raised[0])
    assert any(n in message for n in names), f"the error does not name {names}: {message}"
    return False


# -- optimizers ---------------------------------------------------------------------------------------------------

shapes = st.lists(st.sampled_from([(3,), (2, 2), (1,), (4, 1)]), min_size=1, max_size=3)


# an optimizer, a dtype, its parameters (separate arrays, or views of one flat buffer) and a seed for the values
OPTIMIZER_CASES = lambda test: FUZZ(given(  # noqa: E731
    name=st.sampled_from(NAMES), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
    shape_list=shapes, flat=st.booleans(), seed=st.integers(0, 2**16))(test))


def _params(shape_list, dtype, flat):
    if flat and len(shape_list) > 1:
        return ol.flat_arrays(shape_list, dtype)[1]
    return [np.zeros(s, dtype) for s in shape_list]


def _fill(params, seed):
    rng = np.random.default_rng(seed)
    for p in params:
        p[...] = rng.standard_normal(p.shape)


def _grads(params, seed):
    rng = np.random.default_rng(seed + 1)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def _step(opt, grads):
    if isinstance(opt, ol.SophiaG):
        opt.update_hessian([np.abs(g) for g in grads])
    opt.step(grads)


def _hostile_grad(g, dtype, data):
    """One gradient made wrong (dtype, shape, type) or extreme (NaN, inf), or None (a skipped parameter)."""
    return data.draw(st.sampled_from([
        g.astype(np.float16), g.astype(complex), g.astype(int), g.ravel()[:1], np.zeros((5, 5), dtype), g.tolist(),
        1.0, "g", np.full(g.shape, np.nan, dtype), np.full(g.shape, np.inf, dtype), None, g.T, g[..., None]]),
        label="grad")


def _edit_groups(opt, new_param, data):
    """The list of groups edited by hand: a group appended or popped, one replaced, the list made a tuple."""
    change = data.draw(st.sampled_from(["append", "pop", "replace", "not a list"]), label="groups")
    if change == "append":
        opt.param_groups.append({"params": [new_param], **opt.defaults})
    elif change == "pop":
        opt.param_groups.pop()
    elif change == "replace":
        opt.param_groups[0] = {"params": opt.param_groups[0]["params"], "lr": 0.5}
    else:
        opt.param_groups = tuple(opt.param_groups)


def _watch_optimizer(opt, params):
    """The parameters, the live state and the groups as they stand (read without validating them)."""
    return (lambda: [p.copy() for p in params], lambda: opt.state,
            lambda: opt.param_groups if isinstance(opt.param_groups, list) else list(opt.param_groups))


@OPTIMIZER_CASES
def test_optimizers_under_hostile_hyperparameters(name, data, dtype, shape_list, flat, seed):
    cls = getattr(ol, name)
    params = _params(shape_list, dtype, flat)
    _fill(params, seed)
    key = data.draw(st.sampled_from(sorted(cls.hyper)), label="key")
    value = data.draw(hostile, label="value")
    if key == "betas":
        value = data.draw(st.sampled_from([(value, 0.99), (0.9, value), value, (0.9,), (0.9, 0.99, 0.9)]),
                          label="betas")
    # at construction: a raise builds nothing and leaves the arrays alone
    built = attempt_named(lambda: cls(params, **{key: value}), [key], lambda: [p.copy() for p in params])
    with np.errstate(all="ignore"):  # an accepted extreme value (lr = 1e308) may overflow, as in torch
        opt = cls(params) if not built else cls(params, **{key: value})
        _step(opt, _grads(params, seed))
    # between steps, assigned by hand: the step checks it first
    opt.param_groups[0][key] = value
    grads = _grads(params, seed + 2)
    if attempt_named(lambda: _step(opt, grads), [key], *_watch_optimizer(opt, params), lambda: grads):
        assert all(p.dtype == dtype for p in params)
        arrays = opt.state_arrays(opt.param_groups[0])   # (NAdam's scalar mu_product is kept in float64)
        assert all(v.dtype == dtype for entry in opt.state.values() for k, v in entry.items() if k in arrays)


@OPTIMIZER_CASES
def test_optimizers_under_hostile_gradients_and_groups(name, data, dtype, shape_list, flat, seed):
    cls = getattr(ol, name)
    params = _params(shape_list, dtype, flat)
    _fill(params, seed)
    opt = cls(params)
    _step(opt, _grads(params, seed))
    grads = _grads(params, seed + 2)
    i = data.draw(st.integers(0, len(grads) - 1), label="i")
    action = data.draw(st.sampled_from(["grad", "grads", "delete", "params", "groups"]), label="action")
    names = ["grads", "param_groups", "params"]   # what a refusal may name
    if action == "grad":
        grads[i] = _hostile_grad(grads[i], dtype, data)
    elif action == "grads":
        grads = data.draw(st.sampled_from([grads[:-1], grads + [grads[0]], tuple(grads), np.zeros(3), None,
                                           "grads", {0: grads[0]}]), label="grads")
    elif action == "delete":
        key = data.draw(st.sampled_from(sorted(cls.hyper) + ["params"]), label="key")
        del opt.param_groups[0][key]
        names = [key]
    elif action == "params":
        new = data.draw(st.sampled_from([
            [np.zeros(3, dtype)], [params[0]], list(reversed(params)), [params[0], params[0]],
            [np.zeros(3, np.int64)], [np.zeros(3, np.float16)], np.zeros(3, dtype), [], None, [1.0],
            params + [np.zeros(2, dtype)]]), label="params")
        opt.param_groups[0]["params"] = new
        if isinstance(new, list) and len(new) == len(grads):
            grads = [np.ones(p.shape, p.dtype) if isinstance(p, np.ndarray) else g for p, g in zip(new, grads)]
        elif isinstance(new, list) and all(isinstance(p, np.ndarray) for p in new):
            grads = [np.ones(p.shape, p.dtype) for p in new]
    else:
        _edit_groups(opt, np.zeros(2, dtype), data)
    grads_snapshot = list(grads) if isinstance(grads, list) else grads
    if attempt_named(lambda: opt.step(grads) if not isinstance(opt, ol.SophiaG) else opt.step(grads, bs=2),
                     names, *_watch_optimizer(opt, params), lambda: grads_snapshot):
        # a step that succeeded leaves an optimizer that steps again
        targets = [p for g in opt.param_groups for p in g["params"]]
        with np.errstate(all="ignore"):  # after accepted inf or NaN gradients, NaN spreads (as in torch)
            opt.step([np.ones(p.shape, p.dtype) for p in targets])


@OPTIMIZER_CASES
def test_add_param_group_and_update_hessian_under_hostile_input(name, data, dtype, shape_list, flat, seed):
    cls = getattr(ol, name)
    params = _params(shape_list, dtype, flat)
    _fill(params, seed)
    opt = cls(params)
    _step(opt, _grads(params, seed))
    group = data.draw(st.sampled_from([
        {"params": [np.zeros(2, dtype)], "lr": 10**400}, {"params": [params[0]]}, {"params": []}, {"lr": 0.1},
        {"params": [np.zeros(2, dtype)], "momentun": 0.9}, {"params": np.zeros(2, dtype), "betas": (0.9,)},
        {"params": [np.zeros(2, np.float16)]}, {"params": [np.zeros(2, dtype)], "weight_decay": True},
        {"params": [np.zeros(2, dtype)], "lr": np.array([0.1, 0.2, 0.3])}, [np.zeros(2)], None]), label="group")
    groups_before = [dict(g) for g in opt.param_groups]
    names = ["param_group", *(group if isinstance(group, dict) else ())]   # the group, or its wrong entry
    if attempt_named(lambda: opt.add_param_group(group), names, *_watch_optimizer(opt, params),
                     lambda: groups_before):
        targets = [p for g in opt.param_groups for p in g["params"]]
        _step(opt, [np.ones(p.shape, p.dtype) for p in targets])
    if isinstance(opt, ol.SophiaG):
        estimates = data.draw(st.sampled_from([[None] * len(params), [1.0] * len(params), "h",
                                               [p.astype(np.float16) for p in params], params[:-1]]),
                              label="estimates")
        attempt_named(lambda: opt.update_hessian(estimates), ["estimates"], *_watch_optimizer(opt, params))
        attempt_named(lambda: opt.step(_grads(params, seed), bs=data.draw(hostile, label="bs")), ["bs"],
                      *_watch_optimizer(opt, params))


def _mutations(sd, data):
    """One hostile change to a state dict (a deep copy)."""
    sd = copy.deepcopy(sd)
    group = sd["param_groups"][0]
    choice = data.draw(st.sampled_from(["hyper", "array", "step", "drop", "extra", "ids", "groups", "state"]),
                       label="mutation")
    entries = [e for e in sd["state"].values()]
    if choice == "hyper":
        key = data.draw(st.sampled_from(sorted(k for k in group if k != "params")), label="key")
        group[key] = data.draw(hostile, label="value")
    elif choice == "array" and entries:
        entry = entries[0]
        key = data.draw(st.sampled_from(sorted(k for k in entry if isinstance(entry[k], np.ndarray)) or ["step"]),
                        label="key")
        a = entry[key]
        entry[key] = data.draw(st.sampled_from([
            np.asarray(a).astype(complex), np.asarray(a).astype(int), np.asarray(a).astype(object),
            np.asarray(a).ravel()[:1], np.zeros((7,)), a.tolist() if isinstance(a, np.ndarray) else [a], 0.5,
            np.asarray(a).astype(np.longdouble) * np.longdouble("1e400")]), label="array")
    elif choice == "step" and entries:
        entries[0]["step"] = data.draw(hostile, label="step")
    elif choice == "drop" and entries:
        entries[0].pop(data.draw(st.sampled_from(sorted(entries[0])), label="key"))
    elif choice == "extra" and entries:
        entries[0][data.draw(st.sampled_from(["exp_avg", "momentum_buffer", "sum", "hessian", "mu_product", "z",
                                              "p0", "row_var", "L", "Q_R"]), label="key")] = np.zeros(1)
    elif choice == "ids":
        group["params"] = data.draw(st.sampled_from([[0.5], ["0"], [None], [True], [10**400], [99], "0", None,
                                                     [0, 0]]), label="ids")
    elif choice == "groups":
        sd["param_groups"] = data.draw(st.sampled_from([[], [group, group], None, "g", [None], {0: group}]),
                                       label="groups")
    else:
        sd["state"] = data.draw(st.sampled_from([None, [], {"0": {}}, {0: None}, {99: {"step": 1}},
                                                 {True: {"step": 1}}]), label="state")
    return sd


@FUZZ
@given(name=st.sampled_from(NAMES), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_optimizer_load_state_dict_under_hostile_snapshots(name, data, dtype, seed):
    cls = getattr(ol, name)
    params = [np.zeros(3, dtype), np.zeros((2, 2), dtype)]
    _fill(params, seed)
    opt = cls(params)
    _step(opt, _grads(params, seed))
    sd = _mutations(opt.state_dict(), data)
    _step(opt, _grads(params, seed + 3))  # the live state differs from the snapshot
    if attempt_named(lambda: opt.load_state_dict(sd), ["state_dict"], *_watch_optimizer(opt, params)):
        with np.errstate(all="ignore"):  # an accepted extreme hyperparameter (eps = 1e308) may overflow
            _step(opt, _grads(params, seed + 4))
        assert all(p.dtype == dtype for p in params)


# -- schedules and schedulers -----------------------------------------------------------------------------------

SCHEDULES = {
    "constant_schedule": dict(lr=0.1, factor=0.5, total_iters=3),
    "step_schedule": dict(lr=0.1, step_size=3, gamma=0.5),
    "multistep_schedule": dict(lr=0.1, milestones=[2, 5], gamma=0.5),
    "exponential_schedule": dict(lr=0.1, gamma=0.9),
    "cosine_schedule": dict(lr=0.1, T_max=10, eta_min=0.0),
    "cosine_restarts_schedule": dict(lr=0.1, T_0=3, T_mult=2, eta_min=0.0),
    "linear_schedule": dict(lr=0.1, start_factor=0.5, end_factor=1.0, total_iters=4),
    "linear_warmup_schedule": dict(lr=0.1, warmup_steps=3),
    "warmup_cosine_schedule": dict(lr=0.1, warmup_steps=3, total_steps=10),
    "polynomial_schedule": dict(lr=0.1, total_iters=5, power=2.0),
    "one_cycle_schedule": dict(max_lr=0.1, total_steps=10),
    "wsd_schedule": dict(lr=0.1, warmup_steps=2, stable_steps=3, decay_steps=4),
    "cyclic_schedule": dict(base_lr=0.01, max_lr=0.1, step_size_up=3),
}


@FUZZ
@given(name=st.sampled_from(sorted(SCHEDULES)), data=st.data())
def test_schedules_under_hostile_arguments_and_steps(name, data):
    factory, kwargs = getattr(schedules, name), dict(SCHEDULES[name])
    key = data.draw(st.sampled_from(sorted(kwargs)), label="key")
    kwargs[key] = data.draw(hostile, label="value")
    if attempt_named(lambda: factory(**kwargs), [key]):
        schedule = factory(**kwargs)
        step = data.draw(st.one_of(hostile, st.just(np.arange(5)), st.just([1, 2.5])), label="step")
        attempt_named(lambda: schedule(step), ["step"])
        other = data.draw(st.one_of(hostile, st.just(schedule)), label="other")
        attempt_named(lambda: schedules.join_schedules([schedule, other], data.draw(st.one_of(
            st.just([3]), st.just([0]), st.just([]), hostile), label="milestones"))(np.arange(6)),
            ["schedules", "milestones"])
        attempt_named(lambda: schedules.scale_schedule(schedule, other)(np.arange(3)), ["factor"])


SCHEDULERS = {
    "StepLR": dict(step_size=2, gamma=0.5),
    "MultiStepLR": dict(milestones=[2, 4], gamma=0.5),
    "ConstantLR": dict(factor=0.5, total_iters=3),
    "LinearLR": dict(start_factor=0.5, end_factor=1.0, total_iters=3),
    "ExponentialLR": dict(gamma=0.9),
    "PolynomialLR": dict(total_iters=4, power=2.0),
    "CosineAnnealingLR": dict(T_max=5, eta_min=0.001),
    "CosineAnnealingWarmRestarts": dict(T_0=3, T_mult=2, eta_min=0.001),
    "OneCycleLR": dict(max_lr=0.5, total_steps=20),
    "CyclicLR": dict(base_lr=0.01, max_lr=0.1, step_size_up=3),
    "ReduceLROnPlateau": dict(factor=0.5, patience=1),
    "WSD": dict(warmup_steps=2, stable_steps=2, decay_steps=3),
}


def _scheduled(name, kwargs):
    opt = ol.SGD([np.zeros(3)], lr=0.1, momentum=0.9)
    return opt, getattr(lr_scheduler, name)(opt, **kwargs)


def _advance(sched, n):
    for i in range(n):
        sched.step(1.0 / (i + 1)) if isinstance(sched, lr_scheduler.ReduceLROnPlateau) else sched.step()


@FUZZ
@given(name=st.sampled_from(sorted(SCHEDULERS)), data=st.data())
def test_schedulers_under_hostile_arguments_and_state_dicts(name, data):
    kwargs = dict(SCHEDULERS[name])
    key = data.draw(st.sampled_from(sorted(kwargs) + ["last_epoch"]), label="key")
    bad = {**kwargs, key: data.draw(hostile, label="value")}
    opt = ol.SGD([np.zeros(3)], lr=0.1, momentum=0.9)
    if key == "last_epoch" or not attempt_named(lambda: getattr(lr_scheduler, name)(opt, **bad), [key],
                                                lambda: opt.param_groups[0].copy()):
        opt, sched = _scheduled(name, kwargs)
    else:
        opt, sched = _scheduled(name, bad)
    watched = (lambda: dict(sched.__dict__), lambda: opt.param_groups[0].copy())
    for _ in range(data.draw(st.integers(0, 4), label="steps")):
        if not attempt_named(lambda: _advance(sched, 1), [key], *watched):
            break
    sd = sched.state_dict()
    field = data.draw(st.sampled_from(sorted(sd)), label="field")
    sd[field] = data.draw(st.one_of(hostile, st.just([]), st.just([0.1, 0.2])), label="saved")
    if attempt_named(lambda: sched.load_state_dict(sd), ["state_dict"], *watched):
        # loaded: the next steps still write valid rates (the optimizer accepts them)
        for _ in range(3):
            if not attempt_named(lambda: _advance(sched, 1), [field, key], *watched):
                break
            with np.errstate(over="ignore"):  # a valid rate of 1e308 overflows the parameters: allowed
                # (a rate the optimizer refuses, e.g. an array that does not fit the parameters, is named)
                attempt(lambda: opt.step([np.ones(3)]), lambda: opt.state, lambda: opt.param_groups[0]["params"])
    if isinstance(sched, lr_scheduler.ReduceLROnPlateau):
        attempt_named(lambda: sched.step(data.draw(hostile, label="metric")), ["metrics"], *watched)
    # the optimizer's groups changed by hand under the scheduler
    change = data.draw(st.sampled_from(["add", "delete lr", "delete momentum", "none"]), label="groups")
    if change == "add":   # (refused by name if the scheduler has written a rate that does not fit the group)
        attempt_named(lambda: opt.add_param_group({"params": [np.zeros(2)]}), ["param_group"],
                      lambda: [dict(g) for g in opt.param_groups])
    elif change != "none":
        opt.param_groups[0].pop(change.split()[1])
    # (a step refuses the group it cannot update, or a rate the accepted values lead to, naming them)
    names = [key, field] + {"delete lr": ["lr"], "delete momentum": ["momentum"]}.get(change, ["param groups"])
    attempt_named(lambda: _advance(sched, 1), names, lambda: dict(sched.__dict__),
                  lambda: [dict(g) for g in opt.param_groups])


# -- clipping and accumulation ----------------------------------------------------------------------------------

grad_lists = st.lists(st.sampled_from([(3,), (2, 3), (4, 1)]), min_size=1, max_size=3)


@FUZZ
@given(data=st.data(), shape_list=grad_lists, dtype=st.sampled_from([np.float16, np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_clipping_under_hostile_input(data, shape_list, dtype, seed):
    rng = np.random.default_rng(seed)
    scale = data.draw(st.sampled_from([1e-3, 1.0, 300.0, 1e30]), label="scale")
    with np.errstate(over="ignore"):  # 1e30 is inf in float16: an input like any other
        grads = [(rng.standard_normal(s) * scale).astype(dtype) for s in shape_list]
    bound = data.draw(st.one_of(st.floats(0, 10), hostile, st.just(np.array([[1.0], [2.0]]))), label="bound")
    norm_type = data.draw(st.one_of(st.sampled_from([2.0, 1, "inf", np.inf, 0.5]), hostile), label="norm_type")
    axis = data.draw(st.one_of(st.none(), st.integers(-3, 2), st.sampled_from([(0, 1), (0, 0), 1.0, "x", True])),
                     label="axis")
    entry = data.draw(st.sampled_from(["norm", "by_norm", "value", "global"]), label="entry")
    if data.draw(st.booleans(), label="hostile list"):
        grads.append(data.draw(st.sampled_from([np.ones(3, int), np.ones(3, complex), [1.0], 1.0]), label="x"))
    calls = {"norm": lambda: ol.clip_grad_norm_(grads, bound, norm_type),
             "by_norm": lambda: ol.clip_by_norm_(grads, bound, norm_type, axis=axis),
             "value": lambda: ol.clip_grad_value_(grads, bound),
             "global": lambda: ol.global_norm(grads, norm_type)}
    finite_before = all(np.all(np.isfinite(g)) for g in grads if isinstance(g, np.ndarray))
    names = {"norm": ["max_norm", "norm_type"], "by_norm": ["max_norm", "norm_type", "axis"],
             "value": ["clip_value"], "global": ["norm_type"]}[entry] + ["grads"]
    result = []
    if attempt_named(lambda: result.append(calls[entry]()), names, lambda: list(grads)):
        assert all(g.dtype == dtype for g in grads[:len(shape_list)])
        if entry in ("norm", "global") and finite_before and dtype == np.float16 and norm_type in (1, 2, "inf"):
            # float16 norms are taken in float32: an array of at most 65504 per element has a finite norm
            assert np.isfinite(result[0])


@FUZZ
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_accumulator_under_hostile_input(data, seed):
    k = data.draw(st.one_of(st.integers(1, 3), hostile), label="k")
    if not attempt_named(lambda: ol.GradientAccumulator(k), ["k"]):
        return
    acc = ol.GradientAccumulator(k)
    rng = np.random.default_rng(seed)
    first = [rng.standard_normal(3), rng.standard_normal((2, 2))]
    acc.add(first)
    grads = data.draw(st.sampled_from([
        [np.ones(3), np.ones(4)], [np.ones(3)], [np.ones(3), np.ones((2, 2), int)], [np.ones(3), None], None, 3.0,
        [np.ones(3, np.float16), np.ones((2, 2), np.float32)], [np.ones(3), np.ones((2, 2), complex)]]),
        label="grads")
    weight = data.draw(st.one_of(st.none(), hostile), label="weight")
    watched = lambda: (acc.count, acc._weight, [s.copy() for s in acc._sum] if acc._sum else None)  # noqa: E731
    # (refused by name, or, the accumulator being full, with a call to pop() first)
    attempt_named(lambda: acc.add(grads, weight=weight), ["grads", "weight", "pop()"], watched)


# -- the experiments' entry point -------------------------------------------------------------------------------

@settings(max_examples=800, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["SGD", "Adam", "Sophia", "Lion", "RMSprop"]),
       dtype=st.sampled_from([np.float32, np.float64]), data=st.data())
def test_experiments_run_with_hostile_hyperparameters(name, dtype, data):
    problem = data.draw(st.sampled_from([problems.Ravine(10.0), problems.Rosenbrock()]), label="problem")
    # (steps and accumulate are counts of work: a huge one is a valid request for a long run, not fuzzed here)
    key = data.draw(st.sampled_from(["lr", "weight_decay", "clip_norm", "clip_value"]), label="key")
    value = data.draw(st.one_of(hostile, st.sampled_from([1e-3, 0.1])), label="value")
    kwargs = {"steps": 3, "dtype": dtype, key: value}
    result = []
    if attempt_named(lambda: result.append(experiments.run(problem, name, **kwargs)), [key]):
        assert result[0].info["optimizer"].param_groups[0]["params"][0].dtype == dtype


def test_the_issue_reproducers_raise_named_errors_and_change_nothing():
    x = np.ones(3)
    with pytest.raises(ValueError, match="lr must fit in a float64"):
        ol.SGD([x], lr=10**400)
    o = ol.SGD([x], lr=0.1)
    o.param_groups[0]["lr"] = 10**400
    assert not attempt(lambda: o.step([np.ones(3)]), lambda: o.state, lambda: x.copy())
    assert o.state == {0: {"step": 0}}
    with pytest.raises(TypeError, match="momentum must be a real number.*Fraction"):
        ol.RMSprop([np.ones(3)], momentum=fractions.Fraction(1, 10))
    o = ol.RMSprop([np.ones(3)])
    o.step([np.ones(3)])
    sd = o.state_dict()
    sd["state"][0]["square_avg"] = sd["state"][0]["square_avg"].astype(complex)
    live = o.state_dict()
    with pytest.raises(TypeError, match=r"state_dict\['state'\]\[0\]\['square_avg'\].*complex"):
        o.load_state_dict(sd)
    assert _same(o.state_dict(), live)
    a, b = np.ones(3), np.ones(3)
    o = ol.SGD([a], lr=0.5)
    o.param_groups[0]["params"] = [b]
    o.step([np.ones(3)])
    assert np.array_equal(a, np.ones(3)) and np.array_equal(b, np.full(3, 0.5))  # as torch: b is updated
    g = [np.full(3, 300, np.float16)]
    norm = ol.clip_grad_norm_(g, 1.0)
    assert norm == pytest.approx(300 * 3**0.5, rel=1e-3)
    assert np.allclose(np.linalg.norm(g[0].astype(np.float64)), 1.0, rtol=1e-2)
    a2, b1 = np.ones((2, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"axis 1 is out of range for grads\[1\]"):
        ol.clip_by_norm_([a2, b1], 1.0, axis=1)
    assert np.array_equal(a2, np.ones((2, 3)))
    run = experiments.run(problems.Ravine(10.0), "Sophia", steps=3, dtype=np.float32)
    assert run.info["optimizer"].param_groups[0]["params"][0].dtype == np.float32
    assert np.all(np.isfinite(run.losses))


# -- Schedule-Free, Prodigy and the matrix optimizers --------------------------------------------------------------

MORE = ["SGDScheduleFree", "AdamWScheduleFree", "Prodigy", "Muon", "Adafactor", "Shampoo", "SOAP"]
# Muon, Shampoo and SOAP take matrices only; Adafactor factors the last two axes and keeps vectors whole
MATRICES = {"Muon", "Shampoo", "SOAP"}
matrix_shapes = st.lists(st.sampled_from([(2, 3), (3, 2), (2, 2), (1, 4)]), min_size=1, max_size=3)
any_shapes = st.lists(st.sampled_from([(3,), (2, 3), (1,), (4, 1), (2, 2, 2)]), min_size=1, max_size=3)
# (the matrix rules cost an eigendecomposition or a Newton-Schulz iteration a step: a smaller budget)
MORE_FUZZ = settings(FUZZ, max_examples=3000)
MORE_CASES = lambda test: MORE_FUZZ(given(  # noqa: E731
    name=st.sampled_from(MORE), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
    flat=st.booleans(), seed=st.integers(0, 2**16))(test))


def _group_state(cls):
    """The counters and estimates a group carries besides its hyperparameters (Schedule-Free's k, Prodigy's d)."""
    return list(getattr(cls, "GROUP_STATE", ()))


def _more_params(name, data, dtype, flat, seed):
    params = _params(data.draw(matrix_shapes if name in MATRICES else any_shapes, label="shapes"), dtype, flat)
    _fill(params, seed)
    return params


def _train_step(opt, grads):
    """A step as a training loop takes it: Schedule-Free optimizers are put in train mode first."""
    if hasattr(opt, "train") and not opt.training:
        opt.train()
    opt.step(grads)


@MORE_CASES
def test_more_optimizers_under_hostile_hyperparameters(name, data, dtype, flat, seed):
    cls = getattr(ol, name)
    params = _more_params(name, data, dtype, flat, seed)
    key = data.draw(st.sampled_from(sorted(cls.hyper)), label="key")
    value = data.draw(hostile, label="value")
    if isinstance(cls.hyper[key][0], tuple):   # betas, Adafactor's eps pair, Muon's Newton-Schulz coefficients
        default = cls.hyper[key][0]
        value = data.draw(st.sampled_from([(value,) + default[1:], default[:-1] + (value,), value, default[:1],
                                           default + default[:1]]), label="tuple")
    built = attempt_named(lambda: cls(params, **{key: value}), [key], lambda: [p.copy() for p in params])
    with np.errstate(all="ignore"):  # an accepted extreme value (lr = 1e308) may overflow, as in torch
        opt = cls(params, **{key: value}) if built else cls(params)
        _train_step(opt, _grads(params, seed))   # a value the constructor accepted steps
    # between steps, assigned by hand: the step (or a change of mode) checks it first, and names it
    opt.param_groups[0][key] = value
    grads = _grads(params, seed + 2)
    call = data.draw(st.sampled_from(["step", "eval"] if hasattr(opt, "eval") else ["step"]), label="call")
    watched = (*_watch_optimizer(opt, params), lambda: grads)
    with np.errstate(all="ignore"):
        if call == "step":
            ok = attempt_named(lambda: opt.step(grads), [key], *watched)
        else:
            ok = attempt_named(opt.eval, [key], *watched)
        assert ok or not built, f"{key}={value!r} was accepted at construction, refused between steps"
        if ok:   # and the optimizer goes on: back to train mode, another step, a state dict that loads
            _train_step(opt, _grads(params, seed + 3))
            assert all(p.dtype == dtype for p in params)
            opt.load_state_dict(opt.state_dict())


@MORE_CASES
def test_more_optimizers_under_hostile_gradients_groups_and_modes(name, data, dtype, flat, seed):
    cls = getattr(ol, name)
    params = _more_params(name, data, dtype, flat, seed)
    opt = cls(params)
    _train_step(opt, _grads(params, seed))
    grads = _grads(params, seed + 2)
    i = data.draw(st.integers(0, len(grads) - 1), label="i")
    action = data.draw(st.sampled_from(["grad", "grads", "delete", "counter", "params", "groups", "mode"]),
                       label="action")
    names = ["grads", "param_groups", "params"]   # what a refusal may name
    allowed = (ValueError, TypeError)
    if action == "grad":
        grads[i] = _hostile_grad(grads[i], dtype, data)
    elif action == "grads":
        grads = data.draw(st.sampled_from([grads[:-1], grads + [grads[0]], tuple(grads), np.zeros(3), None,
                                           "grads", {0: grads[0]}, [None] * len(grads)]), label="grads")
    elif action == "delete":
        key = data.draw(st.sampled_from(sorted(cls.hyper) + _group_state(cls) + ["params"]), label="key")
        del opt.param_groups[0][key]
        names = [key]
    elif action == "counter" and _group_state(cls):
        key = data.draw(st.sampled_from(_group_state(cls)), label="key")
        opt.param_groups[0][key] = data.draw(st.one_of(hostile, st.sampled_from([-1, 2.5, "1"])), label="value")
        names = [key]
    elif action == "params":
        shape = (2, 3)
        new = data.draw(st.sampled_from([
            [np.zeros(shape, dtype)], [params[0]], list(reversed(params)), [params[0], params[0]],
            [np.zeros(shape, np.int64)], [np.zeros(shape, np.float16)], np.zeros(shape, dtype), [], None, [1.0],
            params + [np.zeros(shape, dtype)], [np.zeros(3, dtype)]]), label="params")
        opt.param_groups[0]["params"] = new
        if isinstance(new, list) and all(isinstance(p, np.ndarray) for p in new):
            grads = [np.ones(p.shape, p.dtype) for p in new]
    elif action == "groups":
        _edit_groups(opt, np.zeros((2, 2), dtype), data)
    elif action == "mode" and hasattr(opt, "eval"):
        # eval, then a step: refused until train() (a call out of order: RuntimeError, as the package's)
        opt.eval()
        if data.draw(st.booleans(), label="train again"):
            opt.train()
        allowed = (ValueError, TypeError, RuntimeError)
        names += ["train mode"]
    grads_snapshot = list(grads) if isinstance(grads, list) else grads
    watched = (*_watch_optimizer(opt, params), lambda: grads_snapshot)
    if attempt_named(lambda: opt.step(grads), names, *watched, allowed=allowed):
        # a step that succeeded leaves an optimizer that steps again, changes mode and saves
        targets = [p for g in opt.param_groups for p in g["params"]]
        with np.errstate(all="ignore"):  # after accepted inf or NaN gradients, NaN spreads (as in torch)
            _train_step(opt, [np.ones(p.shape, p.dtype) for p in targets])
            if hasattr(opt, "eval"):
                opt.eval()
                opt.train()
            opt.load_state_dict(opt.state_dict())
    else:
        # a refused step: the mode changes either refuse by name too or work
        for switch in (opt.eval, opt.train) if hasattr(opt, "eval") else ():
            attempt_named(switch, names, *_watch_optimizer(opt, params))


def _foreign_state_dict(name, params, seed):
    """The state dict of another optimizer over the same parameter shapes, after a step."""
    other = "Adam" if name != "Adam" else "SGD"
    copies = [p.copy() for p in params]
    opt = getattr(ol, other)(copies)
    opt.step(_grads(copies, seed))
    return opt.state_dict()


@MORE_FUZZ
@given(name=st.sampled_from(MORE), data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16), other=st.sampled_from([None, *MORE]))
def test_more_optimizers_load_state_dict_under_hostile_snapshots(name, data, dtype, seed, other):
    cls = getattr(ol, name)
    params = [np.zeros((2, 3), dtype), np.zeros((2, 2), dtype)]
    _fill(params, seed)
    opt = cls(params)
    _train_step(opt, _grads(params, seed))
    if other == name or other is None:
        sd = _mutations(opt.state_dict(), data)
    elif data.draw(st.booleans(), label="plain"):
        sd = _foreign_state_dict(name, params, seed)
    else:   # another optimizer of this family, stepped on the same shapes
        copies = [p.copy() for p in params]
        o = getattr(ol, other)(copies)
        _train_step(o, _grads(copies, seed))
        sd = o.state_dict()
    _train_step(opt, _grads(params, seed + 3))  # the live state differs from the snapshot
    if attempt_named(lambda: opt.load_state_dict(sd), ["state_dict"], *_watch_optimizer(opt, params)):
        with np.errstate(all="ignore"):  # an accepted extreme hyperparameter (eps = 1e308) may overflow
            _train_step(opt, _grads(params, seed + 4))
            if hasattr(opt, "eval"):
                opt.eval()
        assert all(p.dtype == dtype for p in params)


@settings(FUZZ, max_examples=400)
@given(name=st.sampled_from(["SGD", "Momentum", "Adam", "Prodigy", "SGDScheduleFree", ol.Muon]),
       entry=st.sampled_from(["sweep", "grid"]), data=st.data())
def test_sweep_and_grid_under_hostile_axes(name, entry, data):
    problem = problems.Ravine(10.0)
    key = data.draw(st.sampled_from(["lr", "weight_decay"]), label="key")
    axis = data.draw(st.one_of(st.lists(st.one_of(st.floats(0, 0.1), hostile), min_size=0, max_size=3),
                               st.sampled_from([np.array([0.01, 0.02]), np.array([1, 2]), np.array([True]),
                                                np.array(["a"]), np.array([[0.1]])])), label="axis")
    kwargs = {key: axis, "steps": 2}
    if entry == "grid" and data.draw(st.booleans(), label="second axis"):
        kwargs["momentum" if name == "Momentum" else "lr"] = data.draw(st.sampled_from([[0.5, 0.9], [0.1], []]),
                                                                       label="second")
    x0 = problem.x0.copy()
    result = []
    call = getattr(experiments, entry)
    with np.errstate(all="ignore"):   # an accepted lr of 1e308 diverges: marked, not an error
        ok = attempt_named(lambda: result.append(call(problem, name, x0=x0, **kwargs)),
                           # (an axis, or Muon: its optimizer mixes the rows of a batch)
                           [k for k in kwargs if k != "steps"] + ["optimizer 'Muon'"], lambda: x0)
    if ok:
        assert np.array_equal(x0, problem.x0)   # the start is copied, never moved
