"""Schedule-Free SGD and AdamW, and Prodigy: modes, bad input, state dicts, dtypes, sweeps, experiments.

The numbers themselves are checked against the authors' packages in tests/test_schedule_free_torch.py.
"""

import numpy as np
import pytest

import optimlab as ol
from optimlab import experiments as ex
from optimlab.problems import Ravine
from tests.test_optimizers import (
    ROUNDTRIPS,
    assert_each_raises_and_changes_nothing,
    assert_same,
    assert_unchanged,
    gradient_stream,
    layout,
    snapshot,
)

NAMES = ["SGDScheduleFree", "AdamWScheduleFree", "Prodigy"]
AVERAGED = ["SGDScheduleFree", "AdamWScheduleFree"]
OPTIONS = {
    "SGDScheduleFree": dict(lr=0.1, momentum=0.8, weight_decay=0.01, warmup_steps=3, r=0.5, weight_lr_power=1.5),
    "AdamWScheduleFree": dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, warmup_steps=3, r=0.5),
    "Prodigy": dict(betas=(0.8, 0.99), weight_decay=0.01, use_bias_correction=True, growth_rate=1.1, slice_p=2),
}
SECOND = {
    "SGDScheduleFree": dict(lr=0.05, momentum=0.5),
    "AdamWScheduleFree": dict(lr=0.02, betas=(0.5, 0.9), maximize=True),
    "Prodigy": dict(eps=1e-6, weight_decay=0.0, safeguard_warmup=True, slice_p=1),
}
SHAPES = [(1,), (5,), (3, 4), (2, 2, 3)]


def make(name, params, **overrides):
    opt = getattr(ol, name)([{"params": params[:2]}, {"params": params[2:], **SECOND[name]}],
                            **{**OPTIONS[name], **overrides})
    return opt.train() if name in AVERAGED else opt


def start(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def stepped(name, steps, kind="arrays"):
    """Parameters and their optimizer after ``steps`` steps (in train mode)."""
    params = layout(kind, start())
    opt = make(name, params)
    for grads in gradient_stream(1, SHAPES, steps):
        opt.step(grads)
    return params, opt


# ----------------------------------------------------------------------------------------------------------------
# Train and eval


@pytest.mark.parametrize("name", AVERAGED)
def test_the_parameters_hold_y_in_train_mode_and_x_in_eval_mode(name):
    """y = βx + (1−β)z: after eval() the parameters are x, with z unchanged, and train() brings y back."""
    params, opt = stepped(name, 5)
    y = [p.copy() for p in params]
    z = [opt.state[i]["z"].copy() for i in range(len(params))]
    assert opt.training
    opt.eval()
    assert not opt.training and all(not g["train_mode"] for g in opt.param_groups)
    for i, (p, yi, zi) in enumerate(zip(params, y, z)):
        beta = (OPTIONS if i < 2 else {**OPTIONS, **SECOND})[name].get("momentum") or \
            (OPTIONS if i < 2 else {**OPTIONS, **SECOND})[name]["betas"][0]
        np.testing.assert_allclose(beta * p + (1 - beta) * zi, yi, rtol=1e-14, atol=1e-14)
        assert np.array_equal(opt.state[i]["z"], zi)
    opt.train()
    for p, yi in zip(params, y):
        np.testing.assert_allclose(p, yi, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", AVERAGED)
def test_train_and_eval_are_idempotent_and_only_flip_the_mode_before_the_first_step(name):
    params = start()
    opt = getattr(ol, name)([p for p in params])
    before = [p.copy() for p in params]
    assert not opt.training                        # as the package: eval mode until train() is called
    opt.eval()
    opt.train()
    opt.train()
    assert opt.training and all(np.array_equal(p, q) for p, q in zip(params, before))
    for grads in gradient_stream(2, SHAPES, 3):
        opt.step(grads)
    opt.eval()
    x = [p.copy() for p in params]
    opt.eval()
    assert all(np.array_equal(p, q) for p, q in zip(params, x))
    opt.train()
    y = [p.copy() for p in params]
    opt.train()
    assert all(np.array_equal(p, q) for p, q in zip(params, y))


@pytest.mark.parametrize("kind", ["arrays", "flat"])
@pytest.mark.parametrize("name", AVERAGED)
def test_a_step_in_eval_mode_raises_and_changes_nothing(name, kind):
    params, opt = stepped(name, 2, kind)
    opt.eval()
    before = snapshot(opt, params)
    with pytest.raises(RuntimeError, match=r"train mode.*opt\.train\(\)"):
        opt.step(gradient_stream(4, SHAPES, 1)[0])
    assert_unchanged(opt, params, before)


# ----------------------------------------------------------------------------------------------------------------
# Bad input


BAD = [
    ("SGDScheduleFree", dict(momentum=0.0), ValueError, ["momentum", "> 0", "0.0"]),
    ("SGDScheduleFree", dict(momentum=np.array([[0.5], [1.0]])), ValueError, ["momentum", "(0, 1)", "1."]),
    ("SGDScheduleFree", dict(momentum=1.0), ValueError, ["momentum", "1.0"]),
    ("SGDScheduleFree", dict(momentum="0.9"), TypeError, ["momentum", "number"]),
    ("SGDScheduleFree", dict(lr=-1.0), ValueError, ["lr", "-1.0"]),
    ("SGDScheduleFree", dict(warmup_steps=-2), ValueError, ["warmup_steps", "-2"]),
    ("SGDScheduleFree", dict(warmup_steps=2.5), ValueError, ["warmup_steps", "whole", "2.5"]),
    ("SGDScheduleFree", dict(warmup_steps=float("inf")), ValueError, ["warmup_steps", "finite", "inf"]),
    ("SGDScheduleFree", dict(r=float("nan")), ValueError, ["r", "nan"]),
    ("AdamWScheduleFree", dict(betas=(0.0, 0.99)), ValueError, ["betas", "[0]", "(0, 1)", "0.0"]),
    ("AdamWScheduleFree", dict(betas=(0.9, 1.0)), ValueError, ["betas", "[1]", "1.0"]),
    ("AdamWScheduleFree", dict(weight_lr_power=-1.0), ValueError, ["weight_lr_power", "-1.0"]),
    ("AdamWScheduleFree", dict(foreach=True), TypeError, ["foreach"]),
    ("Prodigy", dict(d0=0.0), ValueError, ["d0", "0.0"]),
    ("Prodigy", dict(eps=0.0), ValueError, ["eps", "0.0"]),
    ("Prodigy", dict(beta3=1.0), ValueError, ["beta3", "1.0"]),
    ("Prodigy", dict(slice_p=0), ValueError, ["slice_p", "0"]),
    ("Prodigy", dict(slice_p=1.5), ValueError, ["slice_p", "1.5"]),
    ("Prodigy", dict(fsdp_in_use=True), ValueError, ["fsdp_in_use", "one process"]),
    ("Prodigy", dict(growth_rate=0.0), ValueError, ["growth_rate", "0.0"]),
    ("Prodigy", dict(lr=np.full((3, 1), 1.0)), TypeError, ["lr", "array", "d is one number"]),
]


@pytest.mark.parametrize("name, kwargs, error, words", BAD)
def test_invalid_hyperparameters_are_named_with_their_value(name, kwargs, error, words):
    with pytest.raises(error) as caught:
        getattr(ol, name)([np.zeros(3)], **kwargs)
    for word in words:
        assert word in str(caught.value), f"{word!r} not in {caught.value}"


def test_prodigy_groups_must_share_what_the_package_reads_from_the_first_group():
    for key, value in [("betas", (0.5, 0.9)), ("d0", 1e-3), ("growth_rate", 2.0), ("decouple", False)]:
        with pytest.raises(ValueError, match=rf"param_groups\[1\]\['{key}'\] must equal param_groups\[0\]"):
            ol.Prodigy([{"params": [np.zeros(2)]}, {"params": [np.zeros(3)], key: value}])
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\] must be the largest lr \(2.0\) or 0"):
        ol.Prodigy([{"params": [np.zeros(2)], "lr": 2.0}, {"params": [np.zeros(3)], "lr": 1.0}])
    ol.Prodigy([{"params": [np.zeros(2)], "lr": 2.0}, {"params": [np.zeros(3)], "lr": 0.0}])   # frozen: fine


def failing_steps(name):
    g = gradient_stream(9, SHAPES, 1)[0]

    def with_group(key, value, gi=1):
        def action(opt, params):
            opt.param_groups[gi][key] = value
            opt.step(g)
        return action

    cases = [
        ("too few grads", lambda o, p: o.step(g[:3]), ValueError, ["expected 4", "got 3"]),
        ("wrong shape", lambda o, p: o.step(g[:2] + [g[2].T, g[3]]), ValueError, ["grads[2]", "(4, 3)"]),
        ("wrong dtype", lambda o, p: o.step(g[:3] + [g[3].astype(np.float32)]), TypeError, ["grads[3]", "float32"]),
        ("scheduler writes NaN", with_group("lr", float("nan")), ValueError, ["param_groups[1]['lr']", "nan"]),
        ("negative weight decay", with_group("weight_decay", -1.0), ValueError, ["weight_decay", "-1.0"]),
    ]
    if name == "SGDScheduleFree":
        cases.append(("momentum 1", with_group("momentum", 1.0), ValueError, ["param_groups[1]['momentum']"]))
    if name == "AdamWScheduleFree":
        cases.append(("beta1 0", with_group("betas", (0.0, 0.9)), ValueError, ["param_groups[1]['betas'][0]"]))
    if name == "Prodigy":
        cases.append(("another lr in one group", with_group("lr", 0.5), ValueError,
                      ["param_groups[1]['lr']", "0.5"]))
        cases.append(("other betas in one group", with_group("betas", (0.5, 0.9)), ValueError,
                      ["param_groups[1]['betas']"]))
        cases.append(("an array lr", with_group("lr", np.ones((1,))), TypeError, ["param_groups[1]['lr']"]))
    return cases


@pytest.mark.parametrize("kind", ["arrays", "flat"])
@pytest.mark.parametrize("name", NAMES)
def test_a_step_that_raises_changes_nothing(name, kind):
    """Parameters, state, counters (k, weight_sum, d, ...) and mode as they were; then the run continues
    exactly as one that never failed."""
    params, clean = layout(kind, start(5)), layout(kind, start(5))
    opt, reference = make(name, params), make(name, clean)
    stream = gradient_stream(6, SHAPES, 4)
    for grads in stream[:2]:
        opt.step(grads)
        reference.step(grads)
    assert_each_raises_and_changes_nothing(opt, params, failing_steps(name))
    for grads in stream[2:]:
        opt.step(grads)
        reference.step(grads)
    for p, q in zip(params, clean):
        assert np.array_equal(p, q)


# ----------------------------------------------------------------------------------------------------------------
# State dicts


@pytest.mark.parametrize("kind", ["arrays", "flat"])
@pytest.mark.parametrize("how", list(ROUNDTRIPS))
@pytest.mark.parametrize("name, mode", [(n, m) for n in NAMES for m in ("train", "eval")[:2 if n in AVERAGED else 1]])
def test_state_dict_resumes_bit_for_bit_with_the_mode(name, mode, how, kind, tmp_path):
    """Saved (in train or eval mode, with a parameter skipped once), loaded into a fresh optimizer over copies of
    the parameters (as a model's own state dict would restore them): same mode, same counters, same run."""
    params = layout(kind, start(7))
    opt = make(name, params)
    stream = gradient_stream(8, SHAPES, 12, skip={2: 1, 8: 3})
    for grads in stream[:6]:
        opt.step(grads)
    if mode == "eval":
        opt.eval()
    saved = ROUNDTRIPS[how](opt.state_dict(), tmp_path)
    copies = layout(kind, params)
    fresh = getattr(ol, name)([{"params": copies[:2]}, {"params": copies[2:]}])
    fresh.load_state_dict(saved)
    assert_same(fresh.state_dict(), opt.state_dict())
    if name in AVERAGED:
        assert fresh.training == (mode == "train")
        opt.train()
        fresh.train()
    for grads in stream[6:]:
        opt.step(grads)
        fresh.step(grads)
    for p, q in zip(params, copies):
        assert np.array_equal(p, q)
    assert_same(fresh.state_dict(), opt.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_load_state_dict_rejects_missing_counters_and_mixed_modes_and_changes_nothing(name):
    params, opt = stepped(name, 3)
    good = opt.state_dict()
    before = snapshot(opt, params)
    lacking = {**good, "param_groups": [dict(g) for g in good["param_groups"]]}
    del lacking["param_groups"][1]["k"]
    with pytest.raises(ValueError, match=r"state_dict\['param_groups'\]\[1\] lacks \['k'\]"):
        opt.load_state_dict(lacking)
    assert_unchanged(opt, params, before)
    if name in AVERAGED:
        mixed = {**good, "param_groups": [dict(g) for g in good["param_groups"]]}
        mixed["param_groups"][0]["train_mode"] = False
        with pytest.raises(ValueError, match="mix train and eval mode"):
            opt.load_state_dict(mixed)
        assert_unchanged(opt, params, before)
    broken = {**good, "param_groups": [dict(g) for g in good["param_groups"]]}
    broken["param_groups"][0]["k"] = -1
    with pytest.raises(ValueError, match=r"state_dict\['param_groups'\]\[0\]\['k'\]"):
        opt.load_state_dict(broken)
    assert_unchanged(opt, params, before)


# ----------------------------------------------------------------------------------------------------------------
# dtypes, maximize, sweeps


@pytest.mark.parametrize("name", NAMES)
def test_params_may_be_float32_and_stay_float32(name):
    params = [p.astype(np.float32) for p in start()]
    opt = make(name, params)
    for grads in gradient_stream(1, SHAPES, 5):
        opt.step([g.astype(np.float32) for g in grads])
    if name in AVERAGED:
        opt.eval()
    assert all(p.dtype == np.float32 for p in params)
    assert all(v.dtype == np.float32 for entry in opt.state.values() for v in entry.values()
               if isinstance(v, np.ndarray))
    assert all(np.all(np.isfinite(p)) for p in params)


@pytest.mark.parametrize("name", NAMES)
def test_maximize_is_descent_on_the_negated_gradient(name):
    a, b = start(), start()
    up = getattr(ol, name)(a, **OPTIONS[name], maximize=True)
    down = getattr(ol, name)(b, **OPTIONS[name])
    if name in AVERAGED:
        up.train()
        down.train()
    for grads in gradient_stream(2, SHAPES, 6):
        up.step(grads)
        down.step([-g for g in grads])
    for p, q in zip(a, b):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("name", AVERAGED)
def test_a_schedule_free_sweep_is_its_separate_runs_in_both_modes(name):
    """(B, 1) arrays of lr, β, weight decay, warm-up and r: each row follows its own scalar run, at y and at x."""
    rng = np.random.default_rng(11)
    n, dim, steps = 4, 3, 25
    lr = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), (n, 1)))
    beta = rng.uniform(0.2, 0.95, (n, 1))
    arrays = {"lr": lr, "weight_decay": rng.uniform(0, 0.1, (n, 1)), "warmup_steps": np.array([[0], [3], [5], [1]]),
              "r": rng.uniform(0, 1, (n, 1))}
    arrays.update(momentum=beta) if name == "SGDScheduleFree" else arrays.update(betas=(beta, np.full((n, 1), 0.99)))

    def row(i):
        return {k: (tuple(float(b[i, 0]) for b in v) if isinstance(v, tuple) else float(v[i, 0]))
                for k, v in arrays.items()}

    theta = np.ones((n, dim))
    opt = getattr(ol, name)([theta], **arrays).train()
    alone = [np.ones(dim) for _ in range(n)]
    opts = [getattr(ol, name)([alone[i]], **row(i)).train() for i in range(n)]
    for _ in range(steps):
        g = rng.standard_normal((n, dim))
        opt.step([g])
        for i in range(n):
            opts[i].step([g[i].copy()])
    for _ in ("at y", "at x"):
        for i in range(n):
            np.testing.assert_allclose(theta[i], alone[i], rtol=1e-14, atol=1e-15)
        opt.eval()
        for o in opts:
            o.eval()


def test_prodigy_keeps_d_in_every_group_and_d_only_grows():
    params = start()
    opt = make("Prodigy", params)
    ds = []
    for _ in range(40):
        opt.step([p - 3.0 for p in params])   # a quadratic with its minimum at 3: far from the start
        ds.append(opt.param_groups[0]["d"])
        assert all(g["d"] == ds[-1] and g["k"] == len(ds) for g in opt.param_groups)
    assert ds[0] == OPTIONS["Prodigy"].get("d0", 1e-6) and ds[-1] > 10 * ds[0]
    assert all(b >= a for a, b in zip(ds, ds[1:]))


# ----------------------------------------------------------------------------------------------------------------
# Experiments: the loss at x


@pytest.mark.parametrize("name", AVERAGED)
def test_a_run_records_the_loss_and_the_path_at_x_and_the_loss_at_y_beside(name):
    """optimlab.experiments.run takes gradients at y and records x (the average, the point Schedule-Free
    returns); info["losses_at_y"] has the losses at y. Checked against the optimizer driven by hand."""
    problem = Ravine(condition_number=20)
    tr = ex.run(problem, name, steps=40, lr=0.05)
    x = problem.x0.astype(float).copy()
    opt = getattr(ol, name)([x], lr=0.05)
    at_x, at_y = [problem.loss(x)], [problem.loss(x)]
    for t in range(40):
        opt.train()
        opt.step([problem.grad(x, t=t)])
        at_y.append(problem.loss(x))
        opt.eval()
        at_x.append(problem.loss(x))
    np.testing.assert_array_equal(tr.losses, at_x)
    np.testing.assert_array_equal(tr.info["losses_at_y"], at_y)
    np.testing.assert_array_equal(tr.path[-1], x)
    assert not tr.info["optimizer"].training        # the run ends at x
    assert not np.array_equal(tr.losses, tr.info["losses_at_y"])


def test_experiments_know_the_new_names_and_a_prodigy_sweep_is_its_separate_runs():
    assert {"SGDScheduleFree", "AdamWScheduleFree", "Prodigy"} <= set(ex.OPTIMIZERS)
    problem = Ravine(condition_number=20)
    result = ex.sweep(problem, "Prodigy", steps=30, lr=[0.5, 1.0], record_path=True)
    for i, lr in enumerate([0.5, 1.0]):
        alone = ex.run(problem, "Prodigy", steps=30, lr=lr)
        np.testing.assert_array_equal(result.trajectory.path[:, i], alone.path)
        np.testing.assert_array_equal(result.trajectory.losses[:, i], alone.losses)
    sf = ex.sweep(problem, "AdamWScheduleFree", steps=30, lr=[0.01, 0.1])
    for i, lr in enumerate([0.01, 0.1]):
        np.testing.assert_allclose(sf.final_loss[i], ex.run(problem, "AdamWScheduleFree", steps=30, lr=lr).final_loss,
                                   rtol=1e-14)
