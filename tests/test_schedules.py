"""Pure schedules: known sequences, arrays of steps, sweeps, invariants (hypothesis), composition, errors."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimlab import schedules as S
from optimlab.schedules import (
    Schedule,
    constant_schedule,
    cosine_restarts_schedule,
    cosine_schedule,
    cyclic_schedule,
    exponential_schedule,
    join_schedules,
    linear_schedule,
    linear_warmup_schedule,
    multistep_schedule,
    one_cycle_momentum_schedule,
    one_cycle_schedule,
    outline_one_cycle_schedule,
    polynomial_schedule,
    scale_schedule,
    step_schedule,
    warmup_cosine_schedule,
    wsd_schedule,
)


def close(a, b, rtol=1e-12, atol=1e-15):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------------------------------------
# Known sequences (the values torch's schedulers produce, from the semantics reference)


def test_known_sequences():
    k = np.arange(12)
    close(step_schedule(0.1, 2, 0.5)(k[:5]), [0.1, 0.1, 0.05, 0.05, 0.025])
    close(linear_schedule(0.1)(k[:7]), [0.1 / 3, 0.14 / 3, 0.06, 0.22 / 3, 0.26 / 3, 0.1, 0.1])
    close(polynomial_schedule(0.1, 4, 2.0)(k[:6]), [0.1, 0.05625, 0.025, 0.00625, 0.0, 0.0])
    close(cosine_restarts_schedule(0.1, 3, 2)(k[:10]),
          [0.1, 0.075, 0.025, 0.1, 0.0933012701892219, 0.075, 0.05, 0.025, 0.0066987298107781, 0.1])
    close(one_cycle_schedule(1.0, 10)(k[:10]),
          [0.04, 0.52, 1.0, 0.9504846320134737, 0.8117456539497631, 0.6112620219362893, 0.38874197806371075,
           0.18825834605023697, 0.049519367986526286, 4e-6])
    momentum = one_cycle_momentum_schedule(10)(k[:10])
    close(momentum[[0, 1, 2, 9]], [0.95, 0.9, 0.85, 0.95])
    assert np.all(np.diff(momentum[2:]) > 0)
    close(cyclic_schedule(0.1, 1.0, 2, 3)(k[:8]), [0.1, 0.55, 1.0, 0.7, 0.4, 0.1, 0.55, 1.0])
    joined = join_schedules([linear_schedule(0.1, 0.1, 1.0, 3), exponential_schedule(0.1, 0.5)], [3])
    close(joined(k[:7]), [0.01, 0.04, 0.07, 0.1, 0.05, 0.025, 0.0125])
    close(multistep_schedule(1.0, [2, 4, 4], 0.5)(k[:6]), [1, 1, 0.5, 0.5, 0.125, 0.125])
    close(constant_schedule(0.1, 0.5, 3)(k[:5]), [0.05, 0.05, 0.05, 0.1, 0.1])
    close(exponential_schedule(2.0, 0.5)(k[:4]), [2, 1, 0.5, 0.25])


def test_outline_one_cycle_shape():
    """The outline's form: linear up from max/div over the first 45%, cosine back down to max/div."""
    T = 200
    s = outline_one_cycle_schedule(1.0, T)
    lr = s(np.arange(T))
    peak = int(0.45 * T) - 1
    assert lr[0] == pytest.approx(1 / 25) and lr[peak] == pytest.approx(1.0)
    assert lr[-1] == pytest.approx(1 / 25)
    close(np.diff(lr[:peak + 1]), np.full(peak, (1 - 1 / 25) / peak))  # linear: equal increments
    down = lr[peak:]
    assert np.all(np.diff(down) < 0)
    pct = (np.arange(peak, T) - peak) / (T - 1 - peak)
    close(down, 1 / 25 + (1 - 1 / 25) * (1 + np.cos(np.pi * pct)) / 2)
    # torch's default differs: a cosine warm-up, from 30%, to max/(25·1e4)
    torch_form = one_cycle_schedule(1.0, T)(np.arange(T))
    assert torch_form[-1] == pytest.approx(4e-6) and np.argmax(torch_form) == int(0.3 * T) - 1


# ------------------------------------------------------------------------------------------------------------
# Steps: scalars, arrays, sweeps


def every_schedule(lr=0.3):
    return [
        constant_schedule(lr, 0.25, 7),
        step_schedule(lr, 9, 0.7),
        multistep_schedule(lr, [3, 10, 10, 40], 0.6),
        exponential_schedule(lr, 0.97),
        cosine_schedule(lr, 33, 0.001),
        cosine_restarts_schedule(lr, 4, 2, 0.002),
        cosine_restarts_schedule(lr, 5, 1),
        linear_schedule(lr, 0.2, 0.9, 25),
        linear_warmup_schedule(lr, 12),
        warmup_cosine_schedule(lr, 10, 60, 0.01, 0.1),
        polynomial_schedule(lr, 40, 1.5, 0.001),
        one_cycle_schedule(lr, 80, 0.25, "linear", three_phase=True),
        one_cycle_schedule(lr, 80),
        one_cycle_momentum_schedule(80, 0.4, "cos", False, 0.8, 0.97),
        outline_one_cycle_schedule(lr, 80),
        wsd_schedule(lr, 10, 40, 20, "1-sqrt", 0.1),
        wsd_schedule(lr, 0, 5, 20, "cosine"),
        wsd_schedule(lr, 3, 0, 1, "linear", 0.5),
        cyclic_schedule(lr / 10, lr, 6, 9, "triangular2"),
        cyclic_schedule(lr / 10, lr, 6, None, "exp_range", 0.99),
        cyclic_schedule(lr / 10, lr, 5, 3, scale_fn=lambda x: 0.9**x, scale_mode="iterations"),
        join_schedules([linear_warmup_schedule(lr, 5, 0.1), cosine_schedule(lr, 30),
                        constant_schedule(lr / 20)], [5, 35]),
        scale_schedule(cosine_schedule(lr, 30), 0.5),
        exponential_schedule(1.0, 0.99) * cosine_schedule(lr, 30),
    ]


@pytest.mark.parametrize("schedule", every_schedule(), ids=lambda s: s.name)
def test_array_of_steps_equals_scalar_steps(schedule):
    k = np.arange(81)
    values = schedule(k)
    assert isinstance(values, np.ndarray) and values.shape == k.shape and values.dtype == np.float64
    scalars = [schedule(int(i)) for i in k]
    assert all(type(v) is float for v in scalars)
    np.testing.assert_array_equal(values, scalars)
    np.testing.assert_array_equal(schedule(k.reshape(9, 9)), values.reshape(9, 9))  # any shape
    np.testing.assert_array_equal(schedule(list(k[:5])), values[:5])  # lists too
    assert schedule(np.int64(7)) == schedule(7.0) == values[7]


@pytest.mark.parametrize("index", range(len(every_schedule())), ids=lambda i: every_schedule()[i].name)
def test_sweep_rows_equal_scalar_runs(index):
    """A (B, 1) array of rates against a (T,) array of steps: a (B, T) table, row b the run with rate b."""
    rates = np.array([0.01, 0.3, 2.0])
    sweep = every_schedule(rates[:, None])[index]
    k = np.arange(81)
    table = sweep(k)
    if sweep.name == "one_cycle_momentum_schedule":  # no rate argument: it broadcasts to the steps only
        assert table.shape == k.shape
        return
    assert table.shape == (3, 81)
    for b, rate in enumerate(rates):
        close(table[b], every_schedule(float(rate))[index](k), rtol=1e-15, atol=0)


def test_array_valued_factors_sweep_too():
    gammas = np.array([[0.9], [0.99]])
    table = exponential_schedule(1.0, gammas)(np.arange(5))
    close(table, [0.9 ** np.arange(5), 0.99 ** np.arange(5)])


def test_fractional_steps_are_allowed_where_the_formula_is_continuous():
    assert cosine_schedule(1.0, 10)(2.5) == pytest.approx((1 + math.cos(math.pi * 0.25)) / 2)
    assert cosine_restarts_schedule(1.0, 2, 2)(2.5) == pytest.approx((1 + math.cos(math.pi * 0.5 / 4)) / 2)
    assert step_schedule(1.0, 2, 0.5)(3.9) == 0.5


@pytest.mark.parametrize("schedule", every_schedule(), ids=lambda s: s.name)
def test_schedules_pickle(schedule):
    if schedule.params.get("scale_fn") is not None:  # a lambda: not picklable, like any lambda
        return
    again = pickle.loads(pickle.dumps(schedule))
    np.testing.assert_array_equal(again(np.arange(60)), schedule(np.arange(60)))
    assert repr(again) == repr(schedule)


def test_scale_and_product():
    base = cosine_schedule(0.2, 10)
    k = np.arange(20)
    np.testing.assert_array_equal((3 * base)(k), 3 * base(k))
    np.testing.assert_array_equal((base * 3)(k), 3 * base(k))
    np.testing.assert_array_equal(scale_schedule(base, np.array([[1.0], [2.0]]))(k), [base(k), 2 * base(k)])
    warm = linear_warmup_schedule(1.0, 5)
    np.testing.assert_array_equal((warm * base)(k), warm(k) * base(k))


def test_join_restarts_each_schedule_at_zero():
    a, b, c = cosine_schedule(1.0, 10), exponential_schedule(0.5, 0.9), step_schedule(0.1, 3, 0.5)
    joined = join_schedules([a, b, c], [10, 25])
    k = np.arange(40)
    expected = np.concatenate([a(k[:10]), b(k[10:25] - 10), c(k[25:] - 25)])
    np.testing.assert_array_equal(joined(k), expected)
    assert joined(0) == a(0) and joined(10) == b(0) and joined(25) == c(0)


def test_one_cycle_is_defined_up_to_total_steps():
    s = one_cycle_schedule(1.0, 5)
    assert s(5) == pytest.approx(0.18825834605023686)  # torch's value after its last step()
    with pytest.raises(ValueError, match=r"step must be <= total_steps=5.*6\.0"):
        s(6)
    with pytest.raises(ValueError, match="total_steps=5"):
        s(np.arange(7))


# ------------------------------------------------------------------------------------------------------------
# Invariants (hypothesis)

lrs = st.floats(1e-5, 10.0)
small = st.integers(1, 60)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(lr=lrs, T=small, ratio=st.floats(0, 1), extra=st.integers(0, 200))
def test_cosine_within_bounds_and_hits_its_endpoints(lr, T, ratio, extra):
    eta_min = lr * ratio
    s = cosine_schedule(lr, T, eta_min)
    values = s(np.arange(T + extra + 1))
    tol = 1e-12 * lr
    assert np.all(values >= eta_min - tol) and np.all(values <= lr + tol)
    assert s(0) == pytest.approx(lr, rel=1e-15)
    assert s(T) == pytest.approx(eta_min, abs=tol)
    assert s(2 * T) == pytest.approx(lr, rel=1e-12)  # not clamped: period 2·T_max, as torch
    assert np.all(np.diff(values[:T + 1]) <= tol)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(lr=lrs, W=small, total=st.integers(1, 100), ratio=st.floats(0, 1), start=st.floats(0, 1))
def test_warmup_cosine_monotone_warmup_then_decay_within_bounds(lr, W, total, ratio, start):
    T = W + total
    s = warmup_cosine_schedule(lr, W, T, lr * ratio, start)
    values = s(np.arange(T + 50))
    tol = 1e-12 * lr
    assert np.all(np.diff(values[:W + 1]) >= -tol)  # warm-up is monotone
    assert np.all(np.diff(values[W:T + 1]) <= tol)  # then the decay is
    assert values[W] == pytest.approx(lr) and values[T] == pytest.approx(lr * ratio, abs=tol)
    assert np.all(values[T:] == values[T])  # stays at eta_min
    assert np.all(values >= min(lr * ratio, lr * start) - tol) and np.all(values <= lr + tol)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(lr=lrs, W=small, start=st.floats(0, 1))
def test_linear_warmup_is_monotone_and_reaches_lr(lr, W, start):
    values = linear_warmup_schedule(lr, W, start)(np.arange(W + 20))
    assert np.all(np.diff(values) >= -1e-15 * lr)
    assert values[0] == pytest.approx(lr * start) and np.all(values[W:] == pytest.approx(lr))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(lr=lrs, W=st.integers(0, 40), S=st.integers(0, 40), D=st.integers(1, 40),
       kind=st.sampled_from(["linear", "cosine", "1-sqrt"]), r=st.floats(0, 0.99))
def test_wsd_phases_have_the_requested_lengths(lr, W, S, D, kind, r):
    f = wsd_schedule(1.0, W, S, D, kind, r)(np.arange(W + S + D + 30))
    warm, stable, decay, floor = f[:W], f[W:W + S], f[W + S:W + S + D], f[W + S + D:]
    assert len(warm) == W and np.all(np.diff(warm) > 0) and np.all(warm < 1) and (W == 0 or warm[0] == 0)
    assert len(stable) == S and np.all(stable == 1.0)
    assert len(decay) == D and decay[0] == 1.0 and np.all(np.diff(decay) < 0) and np.all(decay > r)
    assert np.all(floor == pytest.approx(r, abs=1e-15))
    scaled = wsd_schedule(lr, W, S, D, kind, r)(np.arange(W + S + D + 30))
    assert np.all(scaled[W:] >= lr * r * (1 - 1e-15)) and np.all(scaled <= lr) and np.all(scaled >= 0)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(T_0=st.integers(1, 12), T_mult=st.integers(1, 4), n=st.integers(1, 400))
def test_sgdr_restarts_at_the_right_steps(T_0, T_mult, n):
    s = cosine_restarts_schedule(1.0, T_0, T_mult, 0.0)
    values = s(np.arange(n))
    # the reference: torch's counters, stepped one at a time
    t_cur, t_i, restarts = 0, T_0, []
    for k in range(1, n):
        t_cur += 1
        if t_cur >= t_i:
            t_cur, t_i = t_cur - t_i, t_i * T_mult
            restarts.append(k)
        assert values[k] == pytest.approx((1 + math.cos(math.pi * t_cur / t_i)) / 2, abs=1e-15)
    expected = [T_0 * (T_mult**i - 1) // (T_mult - 1) if T_mult > 1 else T_0 * i for i in range(1, 401)]
    assert restarts == [k for k in expected if k < n]
    assert all(values[k] == 1.0 for k in restarts) and np.all(values > 0)  # eta_min is never reached


def test_sgdr_exact_boundaries_far_out():
    """Where torch's logarithm (step(epoch)) lands one cycle short, the closed form does not."""
    for T_0, m in [(1, 3), (1, 2), (3, 3), (2, 5), (7, 2)]:
        starts = [T_0 * (m**i - 1) // (m - 1) for i in range(1, 14)]
        values = cosine_restarts_schedule(1.0, T_0, m)(np.array(starts, dtype=float))
        assert np.all(values == 1.0)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(max_lr=lrs, T=st.integers(2, 300), where=st.floats(0, 1), three=st.booleans(),
       strategy=st.sampled_from(["cos", "linear"]), div=st.floats(1.5, 100), final=st.floats(1, 1e5))
def test_one_cycle_within_bounds(max_lr, T, where, three, strategy, div, final):
    # pct_start drawn where every phase has steps, in order: pct·T > 1 and, with three phases, 2·pct·T − 2 < T − 1
    lo, hi = 1.01 / T, ((T + 1) / (2 * T) - 0.01 / T) if three else 0.99
    pct = lo + where * (hi - lo)
    values = one_cycle_schedule(max_lr, T, pct, strategy, div, final, three)(np.arange(T))
    lo, hi, tol = min(max_lr / div / final, max_lr / div), max_lr, 1e-14 * max_lr
    assert np.all(values >= lo - tol) and np.all(values <= hi + tol)
    assert values[-1] == pytest.approx(max_lr / div / final, abs=tol)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(base=lrs, span=st.floats(0, 10), up=st.integers(1, 30), down=st.integers(1, 30),
       mode=st.sampled_from(["triangular", "triangular2", "exp_range"]), gamma=st.floats(0.9, 1.0))
def test_cyclic_within_bounds_and_back_at_base_each_cycle(base, span, up, down, mode, gamma):
    top = base + span
    values = cyclic_schedule(base, top, up, down, mode, gamma)(np.arange(5 * (up + down)))
    assert np.all(values >= base * (1 - 1e-12)) and np.all(values <= top * (1 + 1e-12))
    np.testing.assert_allclose(values[:: up + down], base, rtol=1e-12)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(lr=lrs, T=small, power=st.floats(0.1, 4), end=st.floats(0, 1))
def test_polynomial_monotone_to_its_end(lr, T, power, end):
    values = polynomial_schedule(lr, T, power, lr * end)(np.arange(T + 10))
    lo, hi = sorted([lr, lr * end])
    assert np.all(values >= lo * (1 - 1e-12)) and np.all(values <= hi * (1 + 1e-12))
    assert values[T] == pytest.approx(lr * end) and values[0] == pytest.approx(lr)


# ------------------------------------------------------------------------------------------------------------
# Bad input: an error that names the argument and the value


BAD = [
    (lambda: cosine_schedule(0.1, 0), ValueError, ["T_max", "0"]),
    (lambda: cosine_schedule(0.1, -3), ValueError, ["T_max", "-3"]),
    (lambda: cosine_schedule(0.1, 2.5), TypeError, ["T_max", "2.5"]),
    (lambda: cosine_schedule(0.1, True), TypeError, ["T_max", "True"]),
    (lambda: cosine_schedule(-0.1, 10), ValueError, ["lr", "-0.1"]),
    (lambda: cosine_schedule(0.1, 10, eta_min=float("nan")), ValueError, ["eta_min", "nan"]),
    (lambda: cosine_schedule("0.1", 10), TypeError, ["lr", "'0.1'"]),
    (lambda: cosine_restarts_schedule(0.1, 0), ValueError, ["T_0", "0"]),
    (lambda: cosine_restarts_schedule(0.1, 5, 0), ValueError, ["T_mult", "0"]),
    (lambda: cosine_restarts_schedule(0.1, 5, 1.5), TypeError, ["T_mult", "1.5"]),
    (lambda: step_schedule(0.1, 0), ValueError, ["step_size", "0"]),
    (lambda: step_schedule(0.1, 5, gamma=0.0), ValueError, ["gamma", "0.0"]),
    (lambda: multistep_schedule(0.1, [5, 3]), ValueError, ["milestones", "[5, 3]"]),
    (lambda: multistep_schedule(0.1, [-1, 3]), ValueError, ["milestones[0]", "-1"]),
    (lambda: multistep_schedule(0.1, 5), TypeError, ["milestones", "5"]),
    (lambda: exponential_schedule(0.1, -0.5), ValueError, ["gamma", "-0.5"]),
    (lambda: constant_schedule(0.1, 1.5, 3), ValueError, ["factor", "1.5"]),
    (lambda: linear_schedule(0.1, 0.5, 1.2, 10), ValueError, ["end_factor", "1.2"]),
    (lambda: linear_schedule(0.1, total_iters=0), ValueError, ["total_iters", "0"]),
    (lambda: linear_warmup_schedule(0.1, 0), ValueError, ["warmup_steps", "0"]),
    (lambda: warmup_cosine_schedule(0.1, 10, 10), ValueError, ["total_steps", "10"]),
    (lambda: polynomial_schedule(0.1, 0), ValueError, ["total_iters", "0"]),
    (lambda: polynomial_schedule(0.1, 5, power=-1), ValueError, ["power", "-1"]),
    (lambda: one_cycle_schedule(1.0, 0), ValueError, ["total_steps", "0"]),
    (lambda: one_cycle_schedule(1.0, 100, pct_start=0.0), ValueError, ["pct_start", "0.0"]),
    (lambda: one_cycle_schedule(1.0, 100, pct_start=1.0), ValueError, ["pct_start", "1.0"]),
    (lambda: one_cycle_schedule(1.0, 100, pct_start=1.3), ValueError, ["pct_start", "1.3"]),
    (lambda: one_cycle_schedule(1.0, 10, pct_start=0.1), ValueError, ["pct_start=0.1", "total_steps=10"]),
    (lambda: one_cycle_schedule(1.0, 100, anneal_strategy="cosine"), ValueError,
     ["anneal_strategy", "'cosine'"]),
    (lambda: one_cycle_schedule(1.0, 100, anneal_strategy=("cos",)), ValueError,
     ["anneal_strategy", "('cos',)"]),
    (lambda: one_cycle_schedule(1.0, 100, div_factor=0), ValueError, ["div_factor", "0"]),
    (lambda: one_cycle_momentum_schedule(100, base_momentum=1.5), ValueError, ["base_momentum", "1.5"]),
    (lambda: wsd_schedule(1.0, 10, 10, 0), ValueError, ["decay_steps", "0"]),
    (lambda: wsd_schedule(1.0, 10, 10, 5, "exp"), ValueError, ["decay_type", "'exp'"]),
    (lambda: wsd_schedule(1.0, 10, 10, 5, min_lr_ratio=2), ValueError, ["min_lr_ratio", "2"]),
    (lambda: cyclic_schedule(0.1, 1.0, 0), ValueError, ["step_size_up", "0"]),
    (lambda: cyclic_schedule(0.1, 1.0, 5, -2), ValueError, ["step_size_down", "-2"]),
    (lambda: cyclic_schedule(0.1, 1.0, 5, mode="triangle"), ValueError, ["mode", "'triangle'"]),
    (lambda: cyclic_schedule(0.1, 1.0, 5, scale_fn=3), TypeError, ["scale_fn", "3"]),
    (lambda: join_schedules([], []), ValueError, ["schedules", "[]"]),
    (lambda: join_schedules([cosine_schedule(1, 5)] * 3, [5, 5]), ValueError, ["milestones", "[5, 5]"]),
    (lambda: join_schedules([cosine_schedule(1, 5)] * 3, [5]), ValueError, ["milestones", "[5]"]),
    (lambda: join_schedules([cosine_schedule(1, 5), 2.0], [5]), TypeError, ["schedules[1]", "2.0"]),
    (lambda: scale_schedule(cosine_schedule(1, 5), float("inf")), ValueError, ["factor", "inf"]),
    (lambda: cosine_schedule(1, 5)(-1), ValueError, ["step", "-1.0"]),
    (lambda: cosine_schedule(1, 5)(np.array([1.0, np.nan])), ValueError, ["step", "nan"]),
    (lambda: cosine_schedule(1, 5)("3"), TypeError, ["step", "'3'"]),
    (lambda: cosine_schedule(1, 5)(np.array(["a"])), TypeError, ["step"]),
]


@pytest.mark.parametrize("call, error, words", BAD, ids=range(len(BAD)))
def test_bad_input_names_the_argument_and_the_value(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_the_module_exports_what_it_documents():
    for name in S.__all__:
        assert callable(getattr(S, name))
    assert isinstance(cosine_schedule(1.0, 3), Schedule)
