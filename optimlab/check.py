"""Answers that check themselves: one function per code exercise of the course.

Each check takes your function, runs it on fixed and seeded random cases (the first step t = 1 and later steps,
zero gradients, float32 inputs, shapes (n,) and (m, n), large hyperparameters that separate near-misses, and the
default hyperparameters), prints a verdict in words and returns True or False::

    >>> from optimlab import check
    >>> def adam_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    ...     ...
    >>> check.adam_step(adam_step)                                     # doctest: +SKIP
    adam_step: not yet. On the first step (t = 1), shape (5,), float64: your step is 3.16× too large. ...

A wrong answer never raises: when it matches a typical mistake, the verdict names it; otherwise it says which
case fails and how (the ratio of your step to the correct one, which output is off). A crash inside your code
is reported as such. Your function must be *pure*: return new arrays and leave its inputs unchanged.
Tolerances accept a correct answer written another way (relative 1e-9 in float64; 1e-5 with float32 inputs,
whose answer may stay float32 or be float64). Semantics and defaults are torch's where torch has the algorithm.

The checks, by chapter:

1. :func:`gd_rate`, :func:`best_gd_lr` (why SGD struggles)
2. :func:`sgd_momentum_step`, :func:`heavy_ball_tuning` (momentum)
3. :func:`nesterov_step`, :func:`nesterov_lookahead_step` (Nesterov)
4. :func:`adagrad_step`, :func:`adagrad_eps_inside_step` (AdaGrad)
5. :func:`rmsprop_step`, :func:`rmsprop_centered_step` (RMSprop)
6. :func:`adam_step`, :func:`amsgrad_step` (Adam)
7. :func:`adamw_step`, :func:`adam_l2_step` (AdamW)
8. :func:`warmup_cosine`, :func:`cosine_restarts` (schedules)
9. :func:`clip_grad_norm`, :func:`clip_grad_value`, :func:`accumulate_grads` (clipping and accumulation)
10. :func:`paired_difference`, :func:`lr_tolerance_width` (optimizers in practice)
11. :func:`lion_step`, :func:`sophia_step` (Lion and Sophia)
12. :func:`newton_schulz`, :func:`muon_update` (Muon, Shampoo and SOAP)
13. :func:`schedule_free_step`, :func:`average_weights` (Schedule-Free, Prodigy and weight averaging)
14. :func:`scaled_lr`, :func:`noise_scale` (how hyperparameters scale)
15. :func:`lr_against_optimizer`, :func:`refined_grid` (model families; and :func:`paired_difference` of chapter 10)
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings

import numpy as np

from . import schedules
from .clipping import clip_grad_norm_
from .matrix import NS_COEFFICIENTS, Muon
from .matrix import newton_schulz as _newton_schulz
from .optimizers import SGD, Adagrad, Adam, Lion, RMSprop, SophiaG

__all__ = [
    "gd_rate", "best_gd_lr",
    "sgd_momentum_step", "heavy_ball_tuning",
    "nesterov_step", "nesterov_lookahead_step",
    "adagrad_step", "adagrad_eps_inside_step",
    "rmsprop_step", "rmsprop_centered_step",
    "adam_step", "amsgrad_step",
    "adamw_step", "adam_l2_step",
    "warmup_cosine", "cosine_restarts",
    "clip_grad_norm", "clip_grad_value", "accumulate_grads",
    "paired_difference", "lr_tolerance_width",
    "lion_step", "sophia_step",
    "newton_schulz", "muon_update",
    "schedule_free_step", "average_weights",
    "scaled_lr", "noise_scale",
    "lr_against_optimizer", "refined_grid",
]

# Tolerances: a correct answer written another way passes; a near-miss separated by the cases does not.
RTOL64, ATOL64 = 1e-9, 1e-12
RTOL32, ATOL32 = 1e-5, 1e-6


# ----------------------------------------------------------------------------------------------------------------
# The harness: cases, comparison, verdict


class _Case:
    """One call of the student's function: positional and keyword arguments, and a label in words."""

    def __init__(self, label, *args, first=False, **kwargs):
        self.label, self.args, self.kwargs, self.first = label, args, kwargs, first
        self.f32 = any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in _leaves((args, kwargs)))


class _Mistake:
    """A typical wrong answer: ``fn`` computes it (same signature as the answer), ``message`` names it.
    ``on`` lists the outputs the mistake concerns (default: all of them)."""

    def __init__(self, message, fn, on=None):
        self.message, self.fn, self.on = message, fn, on


class _Spec:
    def __init__(self, name, signature, outputs, cases, reference, mistakes, step=None, covers="", shape_hint=""):
        self.name, self.signature, self.outputs = name, signature, outputs
        self.cases, self.reference, self.mistakes = cases, reference, mistakes
        self.step, self.covers = step, covers  # step: (index of θ among the arguments, index among the outputs)
        self.shape_hint = shape_hint  # said after a crash on a matrix product of mismatched shapes


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


def _same_input(before, after) -> bool:
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.shape == after.shape and before.dtype == after.dtype
                and np.array_equal(before, after, equal_nan=True))
    if isinstance(before, (list, tuple, dict)):
        if type(before) is not type(after) or len(before) != len(after):
            return False
        if isinstance(before, dict):
            return all(_same_input(before[k], after.get(k)) for k in before)
        return all(_same_input(b, a) for b, a in zip(before, after))
    return True


def _call(fn, case):
    """Call ``fn`` on fresh copies of the case's inputs: (output, copies after the call); warnings are silenced
    (a chapter must print nothing to stderr) and any exception propagates."""
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        out = fn(*args, **kwargs)
    return out, (args, kwargs)


def _kind(x) -> str:
    if x is None:
        return "None"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}"
    name = type(x).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _as_number(x):
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, np.ndarray) and x.size == 1 and x.dtype.kind in "fiu":
        return float(x.reshape(()))
    return None


def _as_array(x, like, what, case):
    """``x`` as an array shaped like the expected ``like``, or a sentence saying what is wrong."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception:  # noqa: BLE001 - any failure means "not an array"
            return None, f"{what} should be a numpy array, got {_kind(x)}"
        if x.dtype.kind not in "fiu":
            return None, f"{what} should be a numpy array of floats, got {_kind(x)}"
    if x.dtype.kind not in "fiu":
        return None, f"{what} should hold floats, got dtype {x.dtype}"
    if x.shape != like.shape:
        return None, f"{what} has shape {x.shape}, expected {like.shape} (on the case {case.label})"
    if not case.f32 and x.dtype.kind == "f" and x.dtype.itemsize < 8:
        return None, (f"{what} is {x.dtype} although the inputs are float64 (on the case {case.label}): "
                      f"keep float64, do not lower the precision")
    return x.astype(np.float64), None


def _normalize(out, expected, names, case):
    """The answer in the structure of ``expected`` (a tuple of outputs), or a sentence saying what is wrong."""
    if out is None:
        return None, "your function returned None: is the `return` missing?"
    if len(names) > 1:
        if not isinstance(out, (tuple, list)):
            return None, f"your function should return {len(names)} values ({', '.join(names)}), got {_kind(out)}"
        if len(out) != len(names):
            return None, (f"your function should return {len(names)} values ({', '.join(names)}), "
                          f"got {len(out)}")
        items = list(out)
    else:
        items = [out]
    got = []
    for item, exp, name in zip(items, expected, names):
        if isinstance(exp, float):
            value = _as_number(item)
            if value is None:
                return None, f"{name} should be a number, got {_kind(item)}"
            got.append(value)
        elif isinstance(exp, np.ndarray):
            value, problem = _as_array(item, exp, name, case)
            if problem:
                return None, problem
            got.append(value)
        else:  # a list of arrays
            if not isinstance(item, (list, tuple)) or isinstance(item, np.ndarray):
                return None, f"{name} should be a list of {len(exp)} arrays, got {_kind(item)}"
            if len(item) != len(exp):
                return None, f"{name} should be a list of {len(exp)} arrays, got {len(item)}"
            arrays = []
            for i, (a, e) in enumerate(zip(item, exp)):
                value, problem = _as_array(a, e, f"{name}[{i}]", case)
                if problem:
                    return None, problem
                arrays.append(value)
            got.append(arrays)
    return got, None


def _close(a, b, f32, equal_nan=False) -> bool:
    rtol, atol = (RTOL32, ATOL32) if f32 else (RTOL64, ATOL64)
    if isinstance(b, list):
        return all(_close(x, y, f32, equal_nan) for x, y in zip(a, b))
    with np.errstate(all="ignore"):
        return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def _expected(spec, case):
    out, _ = _call(spec.reference, case)
    out = out if len(spec.outputs) > 1 else (out,)
    return [float(o) if isinstance(o, numbers.Real) and not isinstance(o, np.ndarray) else o for o in out]


def _fmt(x) -> str:
    return f"{x:.4g}"


def _fmt_pair(expected, got):
    """Both numbers with enough digits to tell them apart (4 significant digits, more if needed)."""
    for digits in (4, 6, 8, 10, 12, 17):
        e, g = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if e != g:
            break
    return e, g


def _where_off(got, exp, f32):
    """(index, expected, got) of the first entry that differs."""
    rtol, atol = (RTOL32, ATOL32) if f32 else (RTOL64, ATOL64)
    with np.errstate(all="ignore"):
        bad = ~np.isclose(got, exp, rtol=rtol, atol=atol)
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return index, exp[index], got[index]


def _describe_off(spec, case, j, got, exp):
    """How output ``j`` of the answer differs from the expected one, in words."""
    name = spec.outputs[j]
    if isinstance(exp, list):
        k = next(i for i, (a, b) in enumerate(zip(got, exp)) if not _close(a, b, case.f32))
        name, got, exp = f"{name}[{k}]", got[k], exp[k]
    if isinstance(exp, float):
        if not math.isfinite(got):
            return f"your {name} is {got}, expected {_fmt(exp)}"
        e, g = _fmt_pair(exp, got)
        ratio = f" ({got / exp:.3g}× the correct value)" if exp != 0 and got / exp > 0 and \
            abs(got / exp - 1) > 1e-3 else ""
        return f"your {name} is {g}, expected {e}{ratio}"
    if not np.all(np.isfinite(got)):
        hint = " (a division by zero: is ε missing from a denominator?)" if "zero" in case.label else ""
        return f"your {name} contains NaN or inf{hint}"
    if spec.step is not None and j == spec.step[1]:
        theta0 = np.asarray(case.args[spec.step[0]], dtype=np.float64)
        d_got, d_exp = (got - theta0).ravel(), (exp - theta0).ravel()
        n_got, n_exp = np.linalg.norm(d_got), np.linalg.norm(d_exp)
        if n_exp == 0:
            return f"your {name} moved although it should not move at all here"
        if n_got == 0:
            return f"your {name} did not move, but it should"
        cos = float(d_got @ d_exp) / (n_got * n_exp)
        ratio, rel = n_got / n_exp, np.linalg.norm(d_got - d_exp) / n_exp
        if rel < 1e-2:
            return f"your step is slightly off (a relative difference of {rel:.1e})"
        if cos > 1 - 1e-6:
            return f"your step is {ratio:.3g}× {'too large' if ratio > 1 else 'too small'}"
        if cos < -1 + 1e-6:
            return "your step goes the wrong way (uphill): check the sign"
        return "your step points in a different direction from the correct one"
    index, e, g = _where_off(got, exp, case.f32)
    at = f" at index {index if len(index) > 1 else index[0]}" if np.ndim(exp) else ""
    e, g = _fmt_pair(e, g)
    return f"your {name} is off{at}: expected {e}, got {g}"


def _agreement(spec, mistake, answers, failing):
    """How well the answer matches ``mistake`` on the outputs it concerns: (matches in every case, number of
    failing cases where it matches, the first failing (case, output, got, expected) where it matches)."""
    on = mistake.on if mistake.on is not None else range(len(spec.outputs))
    agree = []
    for case, got in zip(spec.cases, answers):
        try:
            out, _ = _call(mistake.fn, case)
        except Exception:  # noqa: BLE001 - a mistake undefined on a case does not match there
            agree.append(False)
            continue
        out = out if len(spec.outputs) > 1 else (out,)
        agree.append(all(_close(got[j], [np.asarray(e, dtype=np.float64) for e in out[j]] if isinstance(out[j], list)
                                else np.asarray(out[j], dtype=np.float64), case.f32, equal_nan=True) for j in on))
    failing = [f for f in failing if f[1] in on]
    cases = {f[0] for f in failing}
    hits = {i for i in cases if agree[i]}
    shown = [f for f in failing if f[0] in hits]
    # show the first failure that is clearly off (θ's before the state's), else the largest
    if spec.step is not None:
        shown.sort(key=lambda f: f[1] != spec.step[1])
    sizes = [_relative_error(spec, spec.cases[f[0]], *f[1:]) for f in shown]
    clear = [f for f, size in zip(shown, sizes) if size >= 5e-2]
    first = clear[0] if clear else (shown[int(np.argmax(sizes))] if shown else None)
    return all(agree), len(hits), len(cases), first


def _relative_error(spec, case, j, got, exp):
    """How far output ``j`` is off, relative to the step (θ's output) or to the expected value."""
    if isinstance(exp, list):
        return max(_relative_error(spec, case, j, a, e) for a, e in zip(got, exp))
    got, exp = np.asarray(got, dtype=np.float64), np.asarray(exp, dtype=np.float64)
    base = exp
    if spec.step is not None and j == spec.step[1]:
        base = exp - np.asarray(case.args[spec.step[0]], dtype=np.float64)
    with np.errstate(all="ignore"):
        size = np.linalg.norm((got - exp).ravel()) / np.linalg.norm(base.ravel())
    return float(size) if np.isfinite(size) else math.inf


def _likely_mistake(spec, answers, failing):
    """The named mistake the answer matches in every case, else the one it matches in the most failing cases
    (at least half of them); None if none fits. Returns (mistake, the failure to describe)."""
    best, best_hits = None, 0
    for mistake in spec.mistakes + _ignored_arguments(spec):
        everywhere, hits, total, first = _agreement(spec, mistake, answers, failing)
        if everywhere and first is not None:
            return mistake, first
        if hits > best_hits and hits >= 2 and 3 * hits >= 2 * total:
            best, best_hits = (mistake, first), hits
    return best if best else (None, None)


def _ignored_arguments(spec):
    """A mistake per keyword argument of the cases: the answer behaves as if that argument were left out."""
    names = sorted({k for case in spec.cases for k in case.kwargs})

    def without(name):
        return lambda *args, **kwargs: spec.reference(*args, **{k: v for k, v in kwargs.items() if k != name})
    return [_Mistake(f"Your function seems to ignore its argument {name}: it gives the answer for the default "
                     f"{name} even when another value is passed.", without(name)) for name in names]


def _say(name, ok, text):
    print(f"{name}: {text}" if ok else f"{name}: not yet. {text}")
    return ok


def _run(spec, fn):
    if not callable(fn):
        raise TypeError(f"fn must be your function, {spec.signature}; got {_kind(fn)}: {fn!r:.60}")
    name = spec.name
    answers, failing = [], []
    for i, case in enumerate(spec.cases):
        try:
            out, after = _call(fn, case)
        except Exception as error:  # noqa: BLE001 - the student's crash is reported, never raised
            message = str(error).splitlines()[0][:200] if str(error) else ""
            hint = f" Check the signature: {spec.signature}." \
                if isinstance(error, TypeError) and "argument" in message else ""
            if spec.shape_hint and isinstance(error, ValueError) and "mismatch" in message:
                hint = " " + spec.shape_hint
            return _say(name, False, f"your function crashed on the case {case.label}: "
                                     f"{type(error).__name__}: {message}.{hint}")
        changed = [k for k, (b, a) in enumerate(zip(case.args, after[0])) if not _same_input(b, a)]
        changed += [k for k in case.kwargs if not _same_input(case.kwargs[k], after[1][k])]
        if changed:
            what = spec.signature.split("(", 1)[1].split(")")[0].split(", ")
            which = ", ".join(what[k] if isinstance(k, int) else k for k in changed)
            return _say(name, False, f"your function changed its input {which} in place (on the case {case.label}). "
                                     "It must return new arrays and leave its inputs alone: write x = x - step, "
                                     "not x -= step, and build new lists.")
        expected = _expected(spec, case)
        got, problem = _normalize(out, expected, spec.outputs, case)
        if problem:
            return _say(name, False, problem + ".")
        answers.append(got)
        failing += [(i, j, a, e) for j, (a, e) in enumerate(zip(got, expected)) if not _close(a, e, case.f32)]
    if not failing:
        return _say(name, True, f"correct on all {len(spec.cases)} cases ({spec.covers}).")
    mistake, where = _likely_mistake(spec, answers, failing)
    if mistake:
        i, j, got, exp = where
        return _say(name, False, f"On the case {spec.cases[i].label}: "
                                 f"{_describe_off(spec, spec.cases[i], j, got, exp)}. {mistake.message}")
    i, j, got, exp = failing[0]
    case = spec.cases[i]
    text = f"On the case {case.label}: {_describe_off(spec, case, j, got, exp)}."
    firsts = [k for k, c in enumerate(spec.cases) if c.first]
    failed = {k for k, *_ in failing}
    if firsts and not failed & set(firsts):
        text += " Your first steps are right; later steps (with state that is not zero) are not."
    elif firsts and failed <= set(firsts):
        text += " Later steps are right, only the first step (t = 1) is not."
    return _say(name, False, f"{text} Right on {len(spec.cases) - len(failed)} of {len(spec.cases)} cases.")


_SPECS = {}


def _check(build):
    """Make the public check ``name(fn)`` from ``build()``, which returns its :class:`_Spec`."""
    def check(fn):
        return _run(build(), fn)
    check.__name__ = check.__qualname__ = build.__name__
    check.__doc__, check.__module__ = build.__doc__, build.__module__
    _SPECS[build.__name__] = build
    return check


# ----------------------------------------------------------------------------------------------------------------
# Cases


SHAPES = ((5,), (3, 4))


def _rng(seed):
    return np.random.default_rng(seed)


def _normal(rng, shape, scale=1.0, dtype=np.float64):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _positive(rng, shape, scale=1.0, dtype=np.float64):
    return (scale * rng.uniform(0.1, 1.0, shape)).astype(dtype)


def _where(shape, dtype, what):
    return f"{what}, shape {shape}, {np.dtype(dtype).name}"


def _rule(cls, theta, grad, state, t=1, decay=None, **h):
    """One step of optimlab's update rule ``cls.rule`` on float64 copies: (θ, state), as torch does it."""
    theta, g = np.array(theta, dtype=np.float64), np.array(grad, dtype=np.float64)
    state = {k: np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    hyper = {k: default for k, (default, _) in cls.hyper.items()}
    hyper.update(h)
    wd = hyper.get("weight_decay", 0.0)
    if wd:
        if decay == "decoupled":
            theta *= 1 - hyper["lr"] * wd
        else:
            g = g + wd * theta
    cls.rule(theta, g, state, [np.empty_like(theta), np.empty_like(theta)], t, hyper)
    return theta, state


OPT_COVERS = "the first step t = 1, later steps, zero gradients, float32, shapes (5,) and (3, 4), " \
             "large hyperparameters, the defaults"


def _optimizer_cases(state_of, hypers, seed, t_steps=False, first_hyper=None):
    """The standard cases of an optimizer step: ``state_of(rng, shape, dtype, fresh)`` gives the state
    arrays (zeros when fresh); ``hypers`` are (label, keyword arguments) pairs for the later steps."""
    rng = _rng(seed)
    cases = []

    def add(what, shape, dtype, fresh, t, kwargs, grad=None, first=False):
        theta = _normal(rng, shape, dtype=dtype)
        g = _normal(rng, shape, dtype=dtype) if grad is None else grad(shape, dtype)
        state = state_of(rng, shape, dtype, fresh)
        args = (theta, g, *state) + ((t,) if t_steps else ())
        label = _where(shape, dtype, what + (f" (t = {t})" if t_steps and t > 1 else ""))
        cases.append(_Case(label, *args, first=first, **kwargs))

    first_kw = first_hyper if first_hyper is not None else {}
    add("the first step (t = 1)", (5,), np.float64, True, 1, first_kw, first=True)
    add("the first step (t = 1)", (3, 4), np.float32, True, 1, first_kw, first=True)
    add("zero gradients on the first step", (5,), np.float64, True, 1, first_kw,
        grad=lambda s, d: np.zeros(s, d), first=True)
    add("zero gradients on a later step", (3, 4), np.float64, False, 3, first_kw, grad=lambda s, d: np.zeros(s, d))
    for k, (what, kwargs) in enumerate(hypers):
        shape = SHAPES[k % 2]
        add(what, shape, np.float64, False, 2 + 3 * k, kwargs)
    add("a later step", (3, 4), np.float32, False, 7, hypers[0][1])
    add("the defaults, a later step", (5,), np.float64, False, 4, {})
    return cases


def _zeros_or(rng, shape, dtype, fresh, make):
    return np.zeros(shape, dtype) if fresh else make(rng, shape, dtype=dtype)


# ----------------------------------------------------------------------------------------------------------------
# Chapter 1: why SGD struggles


def _gd_rate_ref(lr, eigenvalues):
    return float(np.max(np.abs(1 - lr * np.asarray(eigenvalues, dtype=np.float64))))


@_check
def gd_rate():
    """Check ``fn(lr, eigenvalues) -> rate``: the worst contraction per step of gradient descent on a quadratic.

    With Hessian eigenvalues λᵢ (a 1-D array), the error along eigenvector i is multiplied by 1 − ηλᵢ each step;
    the rate is maxᵢ |1 − ηλᵢ| (below 1: converges; above: diverges). Returns True if ``fn`` is right.
    """
    eig = np.array([3.0, 0.5, 10.0, 1.0])
    cases = [_Case(f"η = {lr}, eigenvalues [3, 0.5, 10, 1]", lr, eig.copy()) for lr in (0.05, 0.17, 0.3, 1.5)]
    cases.append(_Case("η = 1.5, eigenvalues [1, 2] (η·min λ > 1)", 1.5, np.array([1.0, 2.0])))
    rng = _rng(11)
    cases.append(_Case("η = 0.02, 50 random eigenvalues in [1, 100]", 0.02, rng.uniform(1, 100, 50)))
    mistakes = [
        _Mistake("It looks like the absolute value is missing: a factor 1 − ηλ below −1 (a step that overshoots "
                 "and flips sign) also makes the error grow, so the rate is max |1 − ηλᵢ|.",
                 lambda lr, e: float(np.max(1 - lr * np.asarray(e)))),
        _Mistake("It looks like you used only the largest eigenvalue, |1 − ηL|; with a small η the slowest "
                 "direction is the flattest one, |1 − ημ|: take the maximum over all eigenvalues.",
                 lambda lr, e: float(abs(1 - lr * np.max(e)))),
        _Mistake("It looks like you used only the smallest eigenvalue, |1 − ημ|; with a large η the steepest "
                 "direction overshoots, |1 − ηL|: take the maximum over all eigenvalues.",
                 lambda lr, e: float(abs(1 - lr * np.min(e)))),
    ]
    return _Spec("gd_rate", "fn(lr, eigenvalues) -> rate", ("rate",), cases, _gd_rate_ref, mistakes,
                 covers="small, tuned and diverging η, unsorted and random eigenvalues")


def _best_gd_lr_ref(mu, L):
    return 2 / (L + mu), (L - mu) / (L + mu)


@_check
def best_gd_lr():
    """Check ``fn(mu, L) -> (lr, rate)``: the fixed learning rate that minimises gradient descent's rate on a
    quadratic whose curvatures lie in [μ, L], η* = 2/(L + μ), and that rate (κ − 1)/(κ + 1) with κ = L/μ.
    """
    cases = [_Case(f"μ = {mu}, L = {L}", mu, L) for mu, L in ((1.0, 10.0), (0.1, 100.0), (2.0, 3.0), (1.0, 1.0))]
    mistakes = [
        _Mistake("It looks like η = 2/L: that is the edge of stability, where the steepest direction stops "
                 "converging. The best η balances both ends, 1 − ημ = ηL − 1, so η* = 2/(L + μ).",
                 lambda mu, L: (2 / L, (L - mu) / (L + mu)), on=(0,)),
        _Mistake("It looks like η = 1/L: safe, but not the best. The best η balances both ends, "
                 "1 − ημ = ηL − 1, so η* = 2/(L + μ).", lambda mu, L: (1 / L, 0.0), on=(0,)),
        _Mistake("It looks like your rate is (L − μ)/L = 1 − 1/κ, the rate at η = 1/L. At η* = 2/(L + μ) the "
                 "rate is 1 − η*μ = (κ − 1)/(κ + 1).", lambda mu, L: (0.0, (L - mu) / L), on=(1,)),
        _Mistake("That rate, (√κ − 1)/(√κ + 1), belongs to tuned momentum (the next chapter); gradient descent "
                 "at its best gets (κ − 1)/(κ + 1).",
                 lambda mu, L: (0.0, (math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)), on=(1,)),
    ]
    return _Spec("best_gd_lr", "fn(mu, L) -> (lr, rate)", ("lr", "rate"), cases, _best_gd_lr_ref, mistakes,
                 covers="condition numbers 1, 1.5, 10 and 1000")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 2: momentum


def _momentum_state(rng, shape, dtype, fresh):
    return (_zeros_or(rng, shape, dtype, fresh, _normal),)


def _sgd_ref(theta, grad, buf, lr, momentum=0.9, nesterov=False):
    theta, s = _rule(SGD, theta, grad, {"momentum_buffer": buf, "_fresh_buffer": False}, lr=lr,
                     momentum=momentum, nesterov=nesterov)
    return theta, s["momentum_buffer"]


def _sgd_variant(inside=False, average=False, old=False, ignore_nesterov=False, stale=False):
    def step(theta, grad, buf, lr, momentum=0.9, nesterov=False):
        g = grad * lr if inside else grad
        m = momentum * buf + (1 - momentum) * g if average else momentum * buf + g
        eta = 1.0 if inside else lr
        d = g + momentum * m if nesterov and not ignore_nesterov else (buf if old else m)
        return theta - eta * d, buf if stale else m
    return step


BUFFER_NOT_UPDATED = _Mistake(
    "The buffer you return seems to be the old one: return the updated m = βm + g, the next step needs it.",
    _sgd_variant(stale=True), on=(1,))
SGD_SIGNATURE = "fn(theta, grad, buf, lr, momentum=0.9, nesterov=False) -> (theta, buf)"
LR_INSIDE = ("It looks like the learning rate is inside the buffer (m ← βm + ηg, θ ← θ − m). torch keeps it "
             "outside: m ← βm + g, then θ ← θ − ηm; the two agree on the first step but not once the buffer "
             "holds past gradients (or η changes).")


@_check
def sgd_momentum_step():
    """Check ``fn(theta, grad, buf, lr, momentum=0.9, nesterov=False) -> (theta, buf)``: one step of torch's SGD
    with momentum β, as a pure function (new arrays, inputs unchanged).

    m ← βm + g, then θ ← θ − ηm, or with ``nesterov=True`` θ ← θ − η(g + βm). ``buf`` (m) starts at zeros:
    with dampening 0, torch's first buffer m₁ = g₁ is exactly β·0 + g₁.
    """
    cases = _optimizer_cases(_momentum_state, [
        ("a later step", {"lr": 0.1, "momentum": 0.9}),
        ("a later step with Nesterov", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        ("a large step, β = 0.5", {"lr": 0.7, "momentum": 0.5}),
        ("a large step, β = 0.5, Nesterov", {"lr": 0.7, "momentum": 0.5, "nesterov": True}),
    ], seed=2, first_hyper={"lr": 0.1})
    for case in cases:
        case.kwargs.setdefault("lr", 0.05)  # lr has no default
    mistakes = [
        _Mistake(LR_INSIDE, _sgd_variant(inside=True)),
        _Mistake("It looks like your buffer is an average, m ← βm + (1 − β)g. torch's SGD adds the whole "
                 "gradient: m ← βm + g (its steps are 1/(1 − β) times larger).", _sgd_variant(average=True)),
        _Mistake("It looks like the step uses the old buffer: update m ← βm + g first, then step with the new m.",
                 _sgd_variant(old=True)),
        _Mistake("nesterov=True seems to be ignored (or to use the old buffer, g + βm_{t−1}, which is the same "
                 "heavy-ball step): torch's Nesterov steps θ ← θ − η(g + βm) with the new m.",
                 _sgd_variant(ignore_nesterov=True)),
        BUFFER_NOT_UPDATED,
    ]
    return _Spec("sgd_momentum_step", SGD_SIGNATURE, ("theta", "buf"), cases, _sgd_ref, mistakes,
                 step=(0, 0), covers=OPT_COVERS.replace("the defaults", "Nesterov, the default β"))


def _heavy_ball_ref(mu, L):
    k = math.sqrt(L / mu)
    return 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, ((k - 1) / (k + 1)) ** 2


@_check
def heavy_ball_tuning():
    """Check ``fn(mu, L) -> (lr, momentum)``: Polyak's optimal heavy-ball settings for a quadratic with
    curvatures in [μ, L]: η = 4/(√L + √μ)², β = ((√κ − 1)/(√κ + 1))², κ = L/μ.
    """
    cases = [_Case(f"μ = {mu}, L = {L}", mu, L) for mu, L in ((1.0, 10.0), (0.1, 100.0), (2.0, 3.0), (0.5, 50.0))]
    mistakes = [
        _Mistake("Your β is (√κ − 1)/(√κ + 1), which is the resulting *rate*; β is its square, "
                 "((√κ − 1)/(√κ + 1))².",
                 lambda mu, L: (0.0, (math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)), on=(1,)),
        _Mistake("Your β is negative: κ is L/μ (at least 1), not μ/L; and β = ((√κ − 1)/(√κ + 1))².",
                 lambda mu, L: (0.0, (math.sqrt(mu / L) - 1) / (math.sqrt(mu / L) + 1)), on=(1,)),
        _Mistake("Your η is 2/(L + μ), gradient descent's best rate; with momentum the best η is larger, "
                 "4/(√L + √μ)².", lambda mu, L: (2 / (L + mu), 0.0), on=(0,)),
        _Mistake("Your η is 4/(√L + √μ) without the square: η = 4/(√L + √μ)².",
                 lambda mu, L: (4 / (math.sqrt(L) + math.sqrt(mu)), 0.0), on=(0,)),
        _Mistake("Your η is 1/L; with momentum the best η is 4/(√L + √μ)².",
                 lambda mu, L: (1 / L, 0.0), on=(0,)),
    ]
    return _Spec("heavy_ball_tuning", "fn(mu, L) -> (lr, momentum)", ("lr", "momentum"), cases,
                 _heavy_ball_ref, mistakes, covers="condition numbers 1.5, 10, 100 and 1000")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 3: Nesterov


def _nesterov_ref(theta, grad, buf, lr, momentum=0.9):
    return _sgd_ref(theta, grad, buf, lr, momentum, nesterov=True)


def _nesterov_variant(**flags):
    step = _sgd_variant(**flags)
    return lambda theta, grad, buf, lr, momentum=0.9: step(theta, grad, buf, lr, momentum, nesterov=True)


@_check
def nesterov_step():
    """Check ``fn(theta, grad, buf, lr, momentum=0.9) -> (theta, buf)``: torch's Nesterov momentum, pure.

    m ← βm + g, then θ ← θ − η(g + βm) with the new m (the gradient is taken at the stored θ; this is
    Sutskever's look-ahead form rewritten). ``buf`` starts at zeros.
    """
    cases = _optimizer_cases(_momentum_state, [
        ("a later step", {"lr": 0.1, "momentum": 0.9}),
        ("a large step, β = 0.5", {"lr": 0.7, "momentum": 0.5}),
    ], seed=3, first_hyper={"lr": 0.1})
    for case in cases:
        case.kwargs.setdefault("lr", 0.05)
    mistakes = [
        _Mistake("It looks like a heavy-ball step, θ ← θ − ηm, which is also g + βm with the old m: update "
                 "m ← βm + g first, then step θ ← θ − η(g + βm) with the new m.",
                 _nesterov_variant(ignore_nesterov=True)),
        _Mistake(LR_INSIDE.replace("θ ← θ − ηm", "θ ← θ − η(g + βm)"), _nesterov_variant(inside=True)),
        _Mistake(BUFFER_NOT_UPDATED.message, _nesterov_variant(stale=True), on=(1,)),
        _Mistake("It looks like your buffer is an average, m ← βm + (1 − β)g; torch adds the whole gradient.",
                 _nesterov_variant(average=True)),
    ]
    return _Spec("nesterov_step", "fn(theta, grad, buf, lr, momentum=0.9) -> (theta, buf)",
                 ("theta", "buf"), cases, _nesterov_ref, mistakes, step=(0, 0),
                 covers=OPT_COVERS.replace("the defaults", "the default β"))


def _wavy_grad(x):
    """The gradient of Σ (x²/2 + x⁴/8 − x/3): nonlinear, so the point where it is taken matters."""
    return x + 0.5 * x**3 - 1 / 3


def _lookahead_ref(theta, velocity, grad_fn, lr, momentum=0.9):
    theta, velocity = np.asarray(theta, np.float64), np.asarray(velocity, np.float64)
    v = momentum * velocity - lr * np.asarray(grad_fn(theta + momentum * velocity), np.float64)
    return theta + v, v


def _lookahead_variant(at_theta=False, minus=False, store_ahead=False):
    def step(theta, velocity, grad_fn, lr, momentum=0.9):
        ahead = theta - momentum * velocity if minus else theta + momentum * velocity
        v = momentum * velocity - lr * grad_fn(theta if at_theta else ahead)
        return (ahead if store_ahead else theta) + v, v
    return step


@_check
def nesterov_lookahead_step():
    """Check ``fn(theta, velocity, grad_fn, lr, momentum=0.9) -> (theta, velocity)``: Sutskever et al.'s form of
    Nesterov's method: v ← βv − η∇f(θ + βv), θ ← θ + v. ``grad_fn(x)`` returns ∇f at x (it works on any shape).
    """
    rng = _rng(4)
    cases = []
    for shape, dtype, lr, beta, fresh in [((5,), np.float64, 0.1, 0.9, True), ((3, 4), np.float64, 0.1, 0.9, False),
                                          ((3, 4), np.float32, 0.2, 0.9, False), ((5,), np.float64, 0.5, 0.5, False)]:
        theta = _normal(rng, shape, dtype=dtype)
        v = np.zeros(shape, dtype) if fresh else _normal(rng, shape, 0.5, dtype)
        what = "the first step (velocity 0)" if fresh else f"a later step, η = {lr}, β = {beta}"
        cases.append(_Case(_where(shape, dtype, what), theta, v, _wavy_grad, lr, first=fresh, momentum=beta))
    cases.append(_Case(_where((5,), np.float64, "the default β"), _normal(rng, (5,)), _normal(rng, (5,), 0.5),
                       _wavy_grad, 0.1))
    cases.append(_Case(_where((5,), np.float64, "zero gradients (at the minimum of a flat quadratic)"),
                       _normal(rng, (5,)), _normal(rng, (5,), 0.5), lambda x: np.zeros_like(x), 0.1, momentum=0.9))
    mistakes = [
        _Mistake("It looks like the gradient is taken at θ (that is the heavy ball); Nesterov takes it at the "
                 "look-ahead point θ + βv.", _lookahead_variant(at_theta=True)),
        _Mistake("The look-ahead goes the wrong way: it is θ + βv, where the velocity is about to carry θ.",
                 _lookahead_variant(minus=True)),
        _Mistake("It looks like the look-ahead point θ + βv was stored as θ: only evaluate the gradient there, "
                 "and step from θ: θ ← θ + v.", _lookahead_variant(store_ahead=True)),
    ]
    return _Spec("nesterov_lookahead_step", "fn(theta, velocity, grad_fn, lr, momentum=0.9) -> (theta, velocity)",
                 ("theta", "velocity"), cases, _lookahead_ref, mistakes, step=(0, 0),
                 covers="the first step, later steps, float32, shapes (5,) and (3, 4), a large η and small β, "
                        "the default β, zero gradients")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 4: AdaGrad


def _sum_state(rng, shape, dtype, fresh):
    return (_zeros_or(rng, shape, dtype, fresh, _positive),)


def _adagrad_ref(theta, grad, sum_sq, lr=1e-2, eps=1e-10, inside=False):
    theta, s = _rule(Adagrad, theta, grad, {"sum": sum_sq}, lr=lr, eps=eps, eps_inside_sqrt=inside)
    return theta, s["sum"]


def _adagrad_variant(inside=False, old=False, lr_in_sum=False, no_sqrt=False):
    def step(theta, grad, sum_sq, lr=1e-2, eps=1e-10):
        new = sum_sq + (lr * grad**2 if lr_in_sum else grad**2)
        v = sum_sq if old else new
        root = v if no_sqrt else (np.sqrt(v + eps) if inside else np.sqrt(v))
        return theta - lr * grad / (root if inside and not no_sqrt else root + eps), new
    return step


ADAGRAD_HYPERS = [
    ("a later step", {"lr": 0.1}),
    ("a large ε = 0.1", {"lr": 0.5, "eps": 0.1}),
    ("a large ε = 0.01, η = 1", {"lr": 1.0, "eps": 0.01}),
]


@_check
def adagrad_step():
    """Check ``fn(theta, grad, sum_sq, lr=1e-2, eps=1e-10) -> (theta, sum_sq)``: torch's AdaGrad, pure.

    G ← G + g², then θ ← θ − η g/(√G + ε): ε outside the square root. ``sum_sq`` starts at zeros.
    """
    cases = _optimizer_cases(_sum_state, ADAGRAD_HYPERS, seed=5)
    mistakes = [
        _Mistake("It looks like ε is inside the square root, √(G + ε) (Keras's and optax's form); torch adds it "
                 "outside: g/(√G + ε).", _adagrad_variant(inside=True)),
        _Mistake("It looks like the step divides by the old sum: add g² to G first, then divide by √G.",
                 _adagrad_variant(old=True)),
        _Mistake("The square root seems to be missing: the step is ηg/(√G + ε).", _adagrad_variant(no_sqrt=True)),
        _Mistake("The learning rate seems to be inside the sum: G accumulates g² alone, and η multiplies the "
                 "step.", _adagrad_variant(lr_in_sum=True)),
    ]
    return _Spec("adagrad_step", "fn(theta, grad, sum_sq, lr=1e-2, eps=1e-10) -> (theta, sum_sq)",
                 ("theta", "sum_sq"), cases, _adagrad_ref, mistakes, step=(0, 0), covers=OPT_COVERS)


def _adagrad_inside_ref(theta, grad, sum_sq, lr=1e-2, eps=1e-10):
    return _adagrad_ref(theta, grad, sum_sq, lr, eps, inside=True)


@_check
def adagrad_eps_inside_step():
    """Check ``fn(theta, grad, sum_sq, lr=1e-2, eps=1e-10) -> (theta, sum_sq)``: AdaGrad with ε inside the
    square root, as optax and Keras write it: G ← G + g², θ ← θ − η g/√(G + ε).

    The default ε differs per library (torch 1e-10, Keras 1e-7, optax 1e-7), so the cases pass ε explicitly;
    the signature keeps torch's default. (Keras and optax also start G at 0.1; here G starts at zeros.)
    """
    cases = _optimizer_cases(_sum_state, ADAGRAD_HYPERS, seed=6)
    cases[-1] = _Case(cases[-1].label.replace("the defaults", "ε = 1e-7 (Keras's and optax's)"), *cases[-1].args,
                      lr=0.1, eps=1e-7)
    for case in cases:
        case.kwargs.setdefault("eps", 1e-7)
    mistakes = [
        _Mistake("It looks like ε is outside the square root, √G + ε (torch's form); this exercise puts it "
                 "inside: g/√(G + ε).", _adagrad_variant()),
        _Mistake("It looks like the step divides by the old sum: add g² to G first, then divide by √(G + ε).",
                 _adagrad_variant(inside=True, old=True)),
        _Mistake("The learning rate seems to be inside the sum: G accumulates g² alone, and η multiplies the "
                 "step.", _adagrad_variant(inside=True, lr_in_sum=True)),
        _Mistake("The square root seems to be missing: the step is ηg/√(G + ε).",
                 lambda theta, grad, sum_sq, lr=1e-2, eps=1e-10: (theta - lr * grad / (sum_sq + grad**2 + eps),
                                                                   sum_sq + grad**2)),
    ]
    return _Spec("adagrad_eps_inside_step", "fn(theta, grad, sum_sq, lr=1e-2, eps=1e-10) -> (theta, sum_sq)",
                 ("theta", "sum_sq"), cases, _adagrad_inside_ref, mistakes, step=(0, 0),
                 covers=OPT_COVERS.replace("the defaults", "Keras's ε"))


# ----------------------------------------------------------------------------------------------------------------
# Chapter 5: RMSprop


def _rmsprop_ref(theta, grad, sq_avg, lr=1e-2, alpha=0.99, eps=1e-8):
    theta, s = _rule(RMSprop, theta, grad, {"square_avg": sq_avg}, lr=lr, alpha=alpha, eps=eps)
    return theta, s["square_avg"]


def _rmsprop_variant(inside=False, swapped=False, old=False, no_one_minus=False, corrected=False):
    def step(theta, grad, sq_avg, lr=1e-2, alpha=0.99, eps=1e-8):
        a = 1 - alpha if swapped else alpha
        new = a * sq_avg + (1.0 if no_one_minus else 1 - a) * grad**2
        v = sq_avg if old else new
        if corrected:
            v = v / (1 - alpha)
        d = np.sqrt(v + eps) if inside else np.sqrt(v) + eps
        return theta - lr * grad / d, new
    return step


RMSPROP_HYPERS = [
    ("a later step", {"lr": 0.01, "alpha": 0.9}),
    ("a large ε = 0.1 and α = 0.5", {"lr": 0.5, "alpha": 0.5, "eps": 0.1}),
    ("α = 0.7, ε = 0.01", {"lr": 0.2, "alpha": 0.7, "eps": 0.01}),
]


@_check
def rmsprop_step():
    """Check ``fn(theta, grad, sq_avg, lr=1e-2, alpha=0.99, eps=1e-8) -> (theta, sq_avg)``: torch's RMSprop
    (not centered, no momentum), pure: v ← αv + (1 − α)g², θ ← θ − η g/(√v + ε). ``sq_avg`` starts at zeros.
    """
    cases = _optimizer_cases(_sum_state, RMSPROP_HYPERS, seed=7)
    mistakes = [
        _Mistake("It looks like ε is inside the square root, √(v + ε) (Keras's and optax's form); torch adds it "
                 "outside: g/(√v + ε).", _rmsprop_variant(inside=True)),
        _Mistake("α and 1 − α seem swapped: v ← αv + (1 − α)g², α (0.99) weighs the old average.",
                 _rmsprop_variant(swapped=True)),
        _Mistake("The new g² seems to enter v without its weight 1 − α: v ← αv + (1 − α)g².",
                 _rmsprop_variant(no_one_minus=True)),
        _Mistake("It looks like the step divides by the old average: update v first, then divide by √v + ε.",
                 _rmsprop_variant(old=True)),
    ]
    return _Spec("rmsprop_step", "fn(theta, grad, sq_avg, lr=1e-2, alpha=0.99, eps=1e-8) -> (theta, sq_avg)",
                 ("theta", "sq_avg"), cases, _rmsprop_ref, mistakes, step=(0, 0), covers=OPT_COVERS)


def _centered_state(rng, shape, dtype, fresh):
    if fresh:
        return np.zeros(shape, dtype), np.zeros(shape, dtype)
    gbar = _normal(rng, shape, 0.5)
    return (gbar**2 + _positive(rng, shape)).astype(dtype), gbar.astype(dtype)


def _centered_ref(theta, grad, sq_avg, grad_avg, lr=1e-2, alpha=0.99, eps=1e-8):
    theta, s = _rule(RMSprop, theta, grad, {"square_avg": sq_avg, "grad_avg": grad_avg}, lr=lr, alpha=alpha,
                     eps=eps, centered=True)
    return theta, s["square_avg"], s["grad_avg"]


def _centered_variant(sign=-1.0, inside=False, old_mean=False):
    def step(theta, grad, sq_avg, grad_avg, lr=1e-2, alpha=0.99, eps=1e-8):
        v = alpha * sq_avg + (1 - alpha) * grad**2
        gbar = alpha * grad_avg + (1 - alpha) * grad
        var = v + sign * (grad_avg if old_mean else gbar) ** 2
        d = np.sqrt(var + eps) if inside else np.sqrt(var) + eps
        return theta - lr * grad / d, v, gbar
    return step


@_check
def rmsprop_centered_step():
    """Check ``fn(theta, grad, sq_avg, grad_avg, lr=1e-2, alpha=0.99, eps=1e-8) -> (theta, sq_avg, grad_avg)``:
    torch's centered RMSprop, pure.

    v ← αv + (1 − α)g², ḡ ← αḡ + (1 − α)g, θ ← θ − η g/(√(v − ḡ²) + ε): divide by an estimate of the
    standard deviation of the gradient instead of its root mean square. Both averages start at zeros.
    """
    cases = _optimizer_cases(_centered_state, RMSPROP_HYPERS, seed=8)
    mistakes = [
        _Mistake("It looks like your step is not centered: divide by √(v − ḡ²) + ε, the running standard "
                 "deviation, not √v + ε.", _centered_variant(sign=0.0), on=(0,)),
        _Mistake("The squared mean seems to be added, √(v + ḡ²); centering subtracts it: √(v − ḡ²) + ε.",
                 _centered_variant(sign=1.0), on=(0,)),
        _Mistake("It looks like ε is inside the square root, √(v − ḡ² + ε); torch adds it outside: "
                 "√(v − ḡ²) + ε.", _centered_variant(inside=True), on=(0,)),
        _Mistake("It looks like the step uses the old mean ḡ: update both averages first, then divide.",
                 _centered_variant(old_mean=True), on=(0,)),
    ]
    return _Spec("rmsprop_centered_step",
                 "fn(theta, grad, sq_avg, grad_avg, lr=1e-2, alpha=0.99, eps=1e-8) -> (theta, sq_avg, grad_avg)",
                 ("theta", "sq_avg", "grad_avg"), cases, _centered_ref, mistakes, step=(0, 0),
                 covers=OPT_COVERS)


# ----------------------------------------------------------------------------------------------------------------
# Chapter 6: Adam, AMSGrad


def _adam_state(rng, shape, dtype, fresh):
    return (_zeros_or(rng, shape, dtype, fresh, _normal), _zeros_or(rng, shape, dtype, fresh, _positive))


def _adam_ref(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    theta, s = _rule(Adam, theta, grad, {"exp_avg": m, "exp_avg_sq": v}, t, lr=lr, betas=tuple(betas), eps=eps)
    return theta, s["exp_avg"], s["exp_avg_sq"]


def _adam_np(theta, grad, m, v, t, lr, betas, eps, *, bc1=True, bc2=True, shift=0, inside=False, decay=0.0,
             decay_mode=None, wd_lr=True, v_max=None, max_hat=False, no_max=False):
    """Adam and its wrong variants, in plain numpy (the mistakes of chapters 6 and 7)."""
    b1, b2 = betas
    if decay_mode == "l2":
        grad = grad + decay * theta
    elif decay_mode == "decoupled":
        theta = theta * (1 - (lr if wd_lr else 1.0) * decay)
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    t_c = t + shift
    m_hat = m / (1 - b1**t_c) if bc1 else m
    c2 = (1 - b2**t_c) if bc2 else 1.0
    out = ()
    if v_max is not None:
        if max_hat:
            v_max = np.maximum(v_max, v / c2)
            denom_v, c2 = v_max, 1.0
        else:
            v_max = np.maximum(v_max, v)
            denom_v = v if no_max else v_max
        out = (v_max,)
    else:
        denom_v = v
    d = np.sqrt(denom_v / c2 + eps) if inside else np.sqrt(denom_v / c2) + eps
    u = m_hat / d
    if decay_mode == "after":
        u = (m_hat + decay * theta) / d
    return (theta - lr * u, m, v) + out


def _adam_variant(**flags):
    def step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        return _adam_np(theta, grad, m, v, t, lr, betas, eps, **flags)
    return step


NO_BIAS_CORRECTION = ("Is the bias correction missing? Adam divides m by 1 − β₁ᵗ and v by 1 − β₂ᵗ (t from 1), "
                      "which matters most in the first steps.")
ADAM_HYPERS = [
    ("a later step", {"lr": 0.01, "betas": (0.9, 0.999)}),
    ("small β = (0.5, 0.6) and a large ε = 0.01", {"lr": 0.1, "betas": (0.5, 0.6), "eps": 0.01}),
    ("β = (0.8, 0.9), ε = 0.1", {"lr": 0.3, "betas": (0.8, 0.9), "eps": 0.1}),
]
ADAM_MISTAKES = [
    _Mistake(NO_BIAS_CORRECTION, _adam_variant(bc1=False, bc2=False)),
    _Mistake("Only the second moment seems to be bias-corrected: divide m by 1 − β₁ᵗ too.", _adam_variant(bc1=False)),
    _Mistake("Only the first moment seems to be bias-corrected: divide v by 1 − β₂ᵗ too.", _adam_variant(bc2=False)),
    _Mistake("The bias correction is off by one: it uses t + 1; with t counting from 1, divide by 1 − βᵗ.",
             _adam_variant(shift=1)),
    _Mistake("The bias correction is off by one: it uses t − 1; with t counting from 1, divide by 1 − βᵗ.",
             _adam_variant(shift=-1)),
    _Mistake("It looks like ε is inside the square root, √(v̂ + ε); torch adds it outside: m̂/(√v̂ + ε).",
             _adam_variant(inside=True)),
]


@_check
def adam_step():
    """Check ``fn(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8) -> (theta, m, v)``: torch's Adam,
    pure; t counts from 1.

    m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), θ ← θ − η m̂/(√v̂ + ε).
    m and v start at zeros.
    """
    cases = _optimizer_cases(_adam_state, ADAM_HYPERS, seed=9, t_steps=True)
    return _Spec("adam_step", "fn(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8) -> (theta, m, v)",
                 ("theta", "m", "v"), cases, _adam_ref, ADAM_MISTAKES, step=(0, 0), covers=OPT_COVERS)


def _amsgrad_state(rng, shape, dtype, fresh):
    m, v = _adam_state(rng, shape, dtype, fresh)
    v_max = np.zeros(shape, dtype) if fresh else (v * rng.uniform(0.5, 2.0, shape)).astype(dtype)
    return m, v, v_max


def _amsgrad_ref(theta, grad, m, v, v_max, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    theta, s = _rule(Adam, theta, grad, {"exp_avg": m, "exp_avg_sq": v, "max_exp_avg_sq": v_max}, t, lr=lr,
                     betas=tuple(betas), eps=eps, amsgrad=True)
    return theta, s["exp_avg"], s["exp_avg_sq"], s["max_exp_avg_sq"]


def _amsgrad_variant(**flags):
    def step(theta, grad, m, v, v_max, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        return _adam_np(theta, grad, m, v, t, lr, betas, eps, v_max=v_max, **flags)
    return step


@_check
def amsgrad_step():
    """Check ``fn(theta, grad, m, v, v_max, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8) -> (theta, m, v, v_max)``:
    torch's AMSGrad (Adam with ``amsgrad=True``), pure.

    As Adam, but v_max ← max(v_max, v) on the raw v, and the step divides by √(v_max/(1 − β₂ᵗ)) + ε.
    (optax takes the maximum of the bias-corrected v̂ instead, another convention; Reddi et al.'s paper has no bias
    correction at all.)
    """
    cases = _optimizer_cases(_amsgrad_state, ADAM_HYPERS, seed=10, t_steps=True)
    mistakes = [
        _Mistake("You took the maximum of the bias-corrected v̂ = v/(1 − β₂ᵗ): that is optax's convention, a "
                 "different AMSGrad (Reddi et al.'s paper has no bias correction). torch (and this check) keeps the "
                 "maximum of the raw v and divides it by 1 − β₂ᵗ afterwards.", _amsgrad_variant(max_hat=True)),
        _Mistake("The step seems to divide by the current v, not by the running maximum v_max: that is plain "
                 "Adam. AMSGrad divides by √(v_max/(1 − β₂ᵗ)) + ε.", _amsgrad_variant(no_max=True), on=(0,)),
        _Mistake(NO_BIAS_CORRECTION, _amsgrad_variant(bc1=False, bc2=False)),
        _Mistake("It looks like ε is inside the square root; torch adds it outside.", _amsgrad_variant(inside=True)),
    ]
    return _Spec("amsgrad_step", "fn(theta, grad, m, v, v_max, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8) "
                                 "-> (theta, m, v, v_max)",
                 ("theta", "m", "v", "v_max"), cases, _amsgrad_ref, mistakes, step=(0, 0),
                 covers=OPT_COVERS)


# ----------------------------------------------------------------------------------------------------------------
# Chapter 7: AdamW, Adam with L2


def _adamw_ref(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, decay="decoupled"):
    theta, s = _rule(Adam, theta, grad, {"exp_avg": m, "exp_avg_sq": v}, t, decay=decay, lr=lr, betas=tuple(betas),
                     eps=eps, weight_decay=weight_decay)
    return theta, s["exp_avg"], s["exp_avg_sq"]


def _adamw_variant(mode, sign=1.0, **flags):
    def step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        return _adam_np(theta, grad, m, v, t, lr, betas, eps, decay=sign * weight_decay, decay_mode=mode, **flags)
    return step


DECAY_HYPERS = [
    ("a later step", {"lr": 0.01, "weight_decay": 0.1}),
    ("a large η = 0.5, λ = 0.5, β = (0.5, 0.6)", {"lr": 0.5, "betas": (0.5, 0.6), "weight_decay": 0.5}),
    ("η = 0.2, λ = 2, ε = 0.01", {"lr": 0.2, "betas": (0.8, 0.9), "eps": 0.01, "weight_decay": 2.0}),
]
ADAMW_SIGNATURE = "fn(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2) -> (theta, m, v)"


@_check
def adamw_step():
    """Check ``fn(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2) -> (theta, m, v)``:
    torch's AdamW, pure: first the decoupled decay θ ← θ(1 − ηλ), then Adam's step on the raw gradient.
    """
    cases = _optimizer_cases(_adam_state, DECAY_HYPERS, seed=12, t_steps=True)
    mistakes = [
        _Mistake("It looks like L2 regularisation (g ← g + λθ before the moments, torch's Adam with weight_decay); "
                 "AdamW decouples the decay: θ ← θ(1 − ηλ), and the moments see the raw gradient.",
                 _adamw_variant("l2")),
        _Mistake("The decay seems not to be scaled by the learning rate: torch's AdamW shrinks θ by 1 − ηλ, "
                 "not 1 − λ.", _adamw_variant("decoupled", wd_lr=False)),
        _Mistake("The decay seems to go the wrong way: θ ← θ(1 − ηλ) shrinks the weights.",
                 _adamw_variant("decoupled", sign=-1.0)),
        _Mistake("The decay seems to be applied after Adam's step, to the new θ; torch applies θ ← θ(1 − ηλ) "
                 "to the old θ, before the step.",
                 lambda theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2: (
                     (lambda out: (out[0] * (1 - lr * weight_decay),) + out[1:])(
                         _adam_np(theta, grad, m, v, t, lr, betas, eps)))),
        *[_Mistake(k.message, _adamw_variant("decoupled", **f)) for k, f in
          ((ADAM_MISTAKES[0], {"bc1": False, "bc2": False}), (ADAM_MISTAKES[5], {"inside": True}))],
    ]
    return _Spec("adamw_step", ADAMW_SIGNATURE, ("theta", "m", "v"), cases, _adamw_ref, mistakes,
                 step=(0, 0), covers=OPT_COVERS)


def _adam_l2_ref(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    return _adamw_ref(theta, grad, m, v, t, lr, betas, eps, weight_decay, decay="l2")


@_check
def adam_l2_step():
    """Check ``fn(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2) -> (theta, m, v)``:
    torch's Adam with ``weight_decay`` (L2 regularisation), pure: g ← g + λθ, then Adam's step on that g
    (so the decay goes through both moments and the division by √v̂ + ε). The default λ here is 1e-2.
    """
    cases = _optimizer_cases(_adam_state, DECAY_HYPERS, seed=13, t_steps=True)
    mistakes = [
        _Mistake("It looks like decoupled decay θ ← θ(1 − ηλ) (AdamW; the same as adding ηλθ to the step after the "
                 "division); torch's Adam with weight_decay adds λθ to the gradient before the moments: g ← g + λθ.",
                 _adamw_variant("decoupled")),
        _Mistake("The decay seems to be added after the moments: λθ must be added to the gradient before m and "
                 "v are updated, g ← g + λθ.", _adamw_variant("after")),
        _Mistake("The decay seems to have the wrong sign: g ← g + λθ pulls the weights towards zero.",
                 _adamw_variant("l2", sign=-1.0)),
        _Mistake(NO_BIAS_CORRECTION, _adamw_variant("l2", bc1=False, bc2=False)),
    ]
    return _Spec("adam_l2_step", ADAMW_SIGNATURE, ("theta", "m", "v"), cases, _adam_l2_ref, mistakes,
                 step=(0, 0), covers=OPT_COVERS)


# ----------------------------------------------------------------------------------------------------------------
# Chapter 8: schedules


def _warmup_cosine_ref(step, total_steps, warmup_steps, peak_lr, final_lr=0.0):
    return schedules.warmup_cosine_schedule(peak_lr, warmup_steps, total_steps, eta_min=final_lr)(step)


def _warmup_variant(shift=0, over_total=False, keeps_going=False, no_floor=False):
    def lr(step, total_steps, warmup_steps, peak_lr, final_lr=0.0):
        floor = 0.0 if no_floor else final_lr
        if step < warmup_steps:
            return peak_lr * (step + shift) / warmup_steps
        span = total_steps if over_total else total_steps - warmup_steps
        k = step - warmup_steps if keeps_going else min(step - warmup_steps, total_steps - warmup_steps)
        return floor + (peak_lr - floor) * (1 + math.cos(math.pi * k / span)) / 2
    return lr


def _schedule_cases(settings, steps_of):
    cases = []
    for args, kwargs in settings:
        for k in steps_of(*args):
            text = ", ".join([f"step {k}"] + [f"{n} = {a}" for n, a in zip(("total_steps", "warmup_steps",
                                                                             "peak_lr"), args[1:])]
                             + [f"{n} = {a}" for n, a in kwargs.items()])
            cases.append(_Case(text, k, *args[1:], **kwargs))
    return cases


@_check
def warmup_cosine():
    """Check ``fn(step, total_steps, warmup_steps, peak_lr, final_lr=0.0) -> lr``: linear warm-up from 0 at
    step 0 to ``peak_lr`` at ``warmup_steps``, then a cosine from ``peak_lr`` down to ``final_lr`` at
    ``total_steps``, constant after. ``step`` counts completed steps from 0 (an int).
    """
    def steps(_, total, warmup, peak):
        return sorted({0, 1, warmup - 1, warmup, warmup + 1, (warmup + total) // 2, total - 1, total, total + 7})
    cases = _schedule_cases([((None, 100, 10, 0.1), {}), ((None, 50, 5, 2.0), {"final_lr": 0.2}),
                             ((None, 20, 4, 1.0), {"final_lr": 0.05})], steps)
    mistakes = [
        _Mistake("The warm-up is off by one: it reaches lr = peak·(step + 1)/warmup_steps; at step 0 the rate is "
                 "0, at warmup_steps it is the peak.", _warmup_variant(shift=1)),
        _Mistake("The cosine runs over total_steps; it should span the steps after the warm-up, "
                 "total_steps − warmup_steps, to reach final_lr exactly at total_steps.",
                 _warmup_variant(over_total=True)),
        _Mistake("After total_steps the rate should stay at final_lr; yours goes back up the cosine.",
                 _warmup_variant(keeps_going=True)),
        _Mistake("final_lr seems to be ignored: the cosine goes from peak_lr down to final_lr.",
                 _warmup_variant(no_floor=True)),
    ]
    return _Spec("warmup_cosine", "fn(step, total_steps, warmup_steps, peak_lr, final_lr=0.0) -> lr",
                 ("lr",), cases, _warmup_cosine_ref, mistakes,
                 covers="steps at both ends of the warm-up and the decay, and after it; three settings")


def _restarts_ref(step, lr_max, T_0, T_mult=1, lr_min=0.0):
    return schedules.cosine_restarts_schedule(lr_max, T_0, T_mult, eta_min=lr_min)(step)


def _restarts_variant(ignore_mult=False, period_plus=False, minus_one=False):
    def lr(step, lr_max, T_0, T_mult=1, lr_min=0.0):
        T_i, k = T_0, step
        while k >= T_i + (1 if period_plus else 0):
            k -= T_i + (1 if period_plus else 0)
            T_i *= 1 if ignore_mult else T_mult
        return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * k / (T_i - 1 if minus_one else T_i))) / 2
    return lr


@_check
def cosine_restarts():
    """Check ``fn(step, lr_max, T_0, T_mult=1, lr_min=0.0) -> lr``: SGDR, the closed form of torch's
    CosineAnnealingWarmRestarts: cycle i lasts T_i = T_0·T_multⁱ steps; within it, after T_cur steps,
    lr = lr_min + (lr_max − lr_min)(1 + cos(π T_cur/T_i))/2. Restarts at step T_0, T_0 + T_0·T_mult, ...
    ``step`` counts completed steps from 0 (an int).
    """
    cases = []
    for (lr_max, T_0, T_mult, lr_min), steps in (((0.1, 5, 1, 0.0), (0, 1, 4, 5, 6, 12)),
                                                 ((1.0, 4, 2, 0.1), (0, 3, 4, 5, 11, 12, 13, 27, 28, 40)),
                                                 ((0.5, 3, 3, 0.0), (2, 3, 11, 12, 20, 38, 39)),
                                                 ((2.0, 10, 1, 0.5), (0, 3, 9, 10, 25))):
        kw = {"T_mult": T_mult} if T_mult != 1 else {}
        if lr_min:
            kw["lr_min"] = lr_min
        for k in steps:
            label = f"step {k}, lr_max = {lr_max}, T_0 = {T_0}" + "".join(f", {n} = {a}" for n, a in kw.items())
            cases.append(_Case(label, k, lr_max, T_0, **kw))
    mistakes = [
        _Mistake("T_mult seems to be ignored: each cycle is T_mult times longer than the one before "
                 "(T_0, T_0·T_mult, T_0·T_mult², ...).", _restarts_variant(ignore_mult=True)),
        _Mistake("The restart is off by one: it comes at step T_0 (lr back to lr_max), not one step later; the "
                 "cosine never reaches lr_min itself.", _restarts_variant(period_plus=True)),
        _Mistake("The cosine runs over T_i − 1 steps: divide by T_i, cos(π T_cur/T_i), so the rate would reach "
                 "lr_min exactly at the restart.", _restarts_variant(minus_one=True)),
    ]
    return _Spec("cosine_restarts", "fn(step, lr_max, T_0, T_mult=1, lr_min=0.0) -> lr", ("lr",), cases,
                 _restarts_ref, mistakes, covers="steps around restarts, T_mult = 1, 2 and 3, lr_min > 0")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 9: clipping and accumulation


def _grad_lists(seed):
    """(label, list of gradient arrays) cases: different scales, one array, float32, zeros."""
    rng = _rng(seed)
    return [
        ("two arrays, global norm above the threshold", [_normal(rng, (5,), 2.0), _normal(rng, (3, 4), 0.5)]),
        ("three arrays of very different sizes", [_normal(rng, (3, 4), 0.1), _normal(rng, (5,), 3.0),
                                                  _normal(rng, (2,), 0.01)]),
        ("one array", [_normal(rng, (3, 4))]),
        ("float32 arrays", [_normal(rng, (5,), 2.0, np.float32), _normal(rng, (3, 4), 1.0, np.float32)]),
        ("small gradients", [_normal(rng, (5,), 0.01), _normal(rng, (3, 4), 0.01)]),
        ("zero gradients", [np.zeros(5), np.zeros((3, 4))]),
    ]


def _clip_norm_ref(grads, max_norm):
    grads = [np.array(g, dtype=np.float64) for g in grads]
    total = clip_grad_norm_(grads, max_norm)
    return grads, float(total)


def _clip_norm_variant(per_array=False, after=False, no_eps=False, always=False, l1=False):
    def clip(grads, max_norm):
        norms = [np.sqrt(np.sum(g**2)) for g in grads]
        total = sum(norms) if l1 else np.sqrt(sum(n**2 for n in norms))
        eps = 0.0 if no_eps else 1e-6
        if per_array:
            out = [g * min(1.0, max_norm / (n + eps)) for g, n in zip(grads, norms)]
        else:
            coef = max_norm / (total + eps)
            out = [g * (coef if always else min(1.0, coef)) for g in grads]
        if after:
            total = np.sqrt(sum(np.sum(g**2) for g in out))
        return out, float(total)
    return clip


@_check
def clip_grad_norm():
    """Check ``fn(grads, max_norm) -> (clipped_grads, total_norm)``: torch's ``clip_grad_norm_`` as a pure
    function of a list of arrays.

    The total norm is the 2-norm of all arrays together, ‖g‖ = √(Σᵢ ‖gᵢ‖²); every array is multiplied by
    min(1, max_norm/(‖g‖ + 1e-6)); the norm returned is the one *before* clipping.
    """
    cases = []
    for (what, grads), c in zip(_grad_lists(14), (1.0, 0.5, 2.0, 1.0, 1.0, 1.0)):
        cases.append(_Case(f"{what}, max_norm = {c}", grads, c))
    mistakes = [
        _Mistake("It looks like each array is clipped by its own norm; clip_grad_norm_ uses one global norm "
                 "over all arrays, √(Σᵢ ‖gᵢ‖²), and one coefficient for all (so the direction is kept).",
                 _clip_norm_variant(per_array=True)),
        _Mistake("The norm you return seems to be the norm after clipping; return the norm before clipping "
                 "(that is what a training loop logs to spot explosions).", _clip_norm_variant(after=True), on=(1,)),
        _Mistake("The total norm seems to be the sum of the arrays' norms; it is the square root of the sum of "
                 "their squares.", _clip_norm_variant(l1=True), on=(1,)),
        _Mistake("Gradients below the threshold are scaled up: the coefficient is capped at 1, "
                 "min(1, max_norm/(‖g‖ + 1e-6)).", _clip_norm_variant(always=True), on=(0,)),
        _Mistake("The 1e-6 seems to be missing: torch divides by ‖g‖ + 1e-6, so a clipped norm ends just below "
                 "max_norm (and zero gradients cause no 0/0).", _clip_norm_variant(no_eps=True), on=(0,)),
    ]
    return _Spec("clip_grad_norm", "fn(grads, max_norm) -> (clipped_grads, total_norm)",
                 ("clipped_grads", "total_norm"), cases, _clip_norm_ref, mistakes,
                 covers="one to three arrays, above and below the threshold, float32, zero gradients")


def _clip_value_ref(grads, clip_value):
    return [np.clip(np.asarray(g, dtype=np.float64), -clip_value, clip_value) for g in grads]


@_check
def clip_grad_value():
    """Check ``fn(grads, clip_value) -> clipped_grads``: torch's ``clip_grad_value_`` as a pure function:
    every coordinate of every array clamped to [−clip_value, clip_value]; new arrays, inputs unchanged.
    """
    cases = [_Case(f"{what}, clip_value = {c}", grads, c)
             for (what, grads), c in zip(_grad_lists(15), (1.0, 0.5, 0.3, 1.0, 1.0, 1.0))]
    mistakes = [
        *[_Mistake("It looks like the arrays are scaled down (as clipping by norm does); clipping by value clamps "
                   "each coordinate to [−c, c] and leaves the others alone, so it can change the direction.",
                   lambda grads, c, per_array=per_array: _clip_norm_variant(per_array=per_array)(grads, c)[0])
          for per_array in (False, True)],
        _Mistake("It looks like the arrays are scaled so that the largest entry is c; clipping by value clamps "
                 "each coordinate to [−c, c] and leaves the others alone.",
                 lambda grads, c: [g * min(1.0, c / max(np.max(np.abs(g)), 1e-300)) for g in grads]),
        _Mistake("Only large positive values seem to be clamped: clamp to [−c, c], below as well as above.",
                 lambda grads, c: [np.minimum(g, c) for g in grads]),
        _Mistake("The signs are lost: clamp g itself to [−c, c], not |g|.",
                 lambda grads, c: [np.minimum(np.abs(g), c) for g in grads]),
        _Mistake("Coordinates beyond ±c seem to be set to zero: clamp them to ±c instead (a large gradient "
                 "still points the way, at size c).",
                 lambda grads, c: [np.where(np.abs(g) > c, 0.0, g) for g in grads]),
    ]
    return _Spec("clip_grad_value", "fn(grads, clip_value) -> clipped_grads", ("clipped_grads",), cases,
                 _clip_value_ref, mistakes,
                 covers="one to three arrays, large and small values, float32, zero gradients")


def _accumulate_ref(micro_grads, counts):
    total = float(sum(counts))
    return [sum(n * np.asarray(g[i], dtype=np.float64) for g, n in zip(micro_grads, counts)) / total
            for i in range(len(micro_grads[0]))]


def _accumulate_variant(weights, divide):
    def accumulate(micro_grads, counts):
        w = weights(counts)
        return [sum(wk * g[i] for g, wk in zip(micro_grads, w)) / divide(counts)
                for i in range(len(micro_grads[0]))]
    return accumulate


@_check
def accumulate_grads():
    """Check ``fn(micro_grads, counts) -> grad``: the gradient of the mean loss over all examples of K
    micro-batches, from each micro-batch's mean-loss gradient.

    ``micro_grads`` is a list of K lists of arrays (one list per micro-batch, one array per parameter);
    ``counts`` the K numbers of examples. The answer is one list of arrays, Σₖ nₖ gₖ / Σₖ nₖ.
    """
    rng = _rng(16)
    cases = []
    for what, counts, shapes, dtype in (("three micro-batches of 64, 64 and 16 examples", [64, 64, 16],
                                         [(5,), (3, 4)], np.float64),
                                        ("two micro-batches of 10 and 30", [10, 30], [(3, 4)], np.float64),
                                        ("four micro-batches, float32", [32, 8, 32, 20], [(5,), (2, 3)], np.float32),
                                        ("four equal micro-batches of 16", [16] * 4, [(5,), (3, 4)], np.float64),
                                        ("one micro-batch of 7", [7], [(5,)], np.float64)):
        micro = [[_normal(rng, s, dtype=dtype) for s in shapes] for _ in counts]
        cases.append(_Case(what, micro, counts))
    mistakes = [
        _Mistake("It looks like the plain mean of the micro-batch gradients: with micro-batches of different "
                 "sizes, weight each by its number of examples, Σₖ nₖ gₖ / Σₖ nₖ.",
                 _accumulate_variant(lambda c: [1] * len(c), len)),
        _Mistake("It looks like the sum of the micro-batch gradients, without dividing: the mean loss's "
                 "gradient is Σₖ nₖ gₖ / Σₖ nₖ.", _accumulate_variant(lambda c: [1] * len(c), lambda c: 1)),
        _Mistake("The weighted sum seems to be divided by the number of micro-batches; divide by the number of "
                 "examples, Σₖ nₖ.", _accumulate_variant(lambda c: c, len)),
        _Mistake("The weighted sum Σₖ nₖ gₖ is not divided by the number of examples Σₖ nₖ.",
                 _accumulate_variant(lambda c: c, lambda c: 1)),
    ]
    return _Spec("accumulate_grads", "fn(micro_grads, counts) -> grad", ("grad",), cases, _accumulate_ref,
                 mistakes, covers="equal and unequal micro-batches, one to four of them, float32")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 10: practice


def _paired_ref(a, b):
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


@_check
def paired_difference():
    """Check ``fn(a, b) -> (mean, standard_error)``: two optimizers' results on the same seeds (a[i] and b[i]
    from seed i); the mean of the differences a − b and its standard error std(a − b, ddof=1)/√n.
    """
    rng = _rng(17)
    cases = []
    for what, n, spread, shift in (("5 seeds", 5, 0.05, 0.01), ("10 seeds, strongly correlated", 10, 0.2, -0.02),
                                   ("3 seeds", 3, 1.0, 0.5), ("20 seeds", 20, 0.01, 0.001)):
        base = rng.normal(0.9, spread, n)
        a, b = base + shift + rng.normal(0, spread / 10, n), base + rng.normal(0, spread / 10, n)
        cases.append(_Case(what, a, b))
    mistakes = [
        _Mistake("The standard deviation seems to use ddof=0: with n seeds, the unbiased variance divides by "
                 "n − 1, std(a − b, ddof=1).", lambda a, b: (0.0, float(np.std(a - b) / math.sqrt(len(a)))),
                 on=(1,)),
        _Mistake("This is the standard error of two independent samples, √(var a/n + var b/n); the runs are "
                 "paired (same seeds), so take the differences first: std(a − b, ddof=1)/√n, much smaller when "
                 "the runs are correlated.",
                 lambda a, b: (0.0, float(math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / len(a)))), on=(1,)),
        _Mistake("Not divided by √n: that is the spread of one difference, not the standard error of the mean.",
                 lambda a, b: (0.0, float(np.std(a - b, ddof=1))), on=(1,)),
        _Mistake("The sign is flipped: the mean of a − b, not b − a.", lambda a, b: (float(np.mean(b - a)), 0.0),
                 on=(0,)),
    ]
    return _Spec("paired_difference", "fn(a, b) -> (mean, standard_error)", ("mean", "standard_error"),
                 cases, _paired_ref, mistakes, covers="3 to 20 seeds, correlated and not")


def _tolerance_ref(lrs, scores, tolerance):
    lrs, scores = np.asarray(lrs, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    best = int(np.argmin(scores))
    ok = scores <= scores[best] + tolerance
    lo = hi = best
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(ok) - 1 and ok[hi + 1]:
        hi += 1
    return float(np.log10(lrs[hi]) - np.log10(lrs[lo]))


def _tolerance_variant(whole=False, linear=False, anywhere=False, strict=False):
    def width(lrs, scores, tolerance):
        lrs, scores = np.asarray(lrs, float), np.asarray(scores, float)
        best = int(np.argmin(scores))
        ok = scores < scores[best] + tolerance if strict else scores <= scores[best] + tolerance
        ok[best] = True
        if whole:
            lo, hi = 0, len(lrs) - 1
        elif anywhere:
            lo, hi = int(np.flatnonzero(ok)[0]), int(np.flatnonzero(ok)[-1])
        else:
            lo = hi = best
            while lo > 0 and ok[lo - 1]:
                lo -= 1
            while hi < len(ok) - 1 and ok[hi + 1]:
                hi += 1
        return float(lrs[hi] - lrs[lo]) if linear else float(np.log10(lrs[hi] / lrs[lo]))
    return width


@_check
def lr_tolerance_width():
    """Check ``fn(lrs, scores, tolerance) -> decades``: how sensitive a tuned optimizer is to its learning rate.

    ``lrs`` is sorted ascending, ``scores[i]`` the (lower is better) result at ``lrs[i]``. Starting from the best
    score, extend to the neighbours whose score is within ``tolerance`` of it (score ≤ best + tolerance), as long
    as they are contiguous; return the width of that range in decades, log10(lr_high) − log10(lr_low).
    """
    lrs = np.logspace(-4, 0, 9)
    cases = [
        _Case("a valley in the middle of the grid", lrs, np.array([0.9, 0.7, 0.35, 0.3, 0.32, 0.5, 0.38, 0.9, 2.0]),
              0.1),
        _Case("a score exactly at best + tolerance", lrs, np.array([1.0, 0.75, 0.6, 0.5, 0.625, 0.9, 1.0, 1.5, 3.0]),
              0.25),
        _Case("the best at the grid's edge", lrs, np.array([0.2, 0.21, 0.25, 0.4, 0.6, 0.8, 1.0, 2.0, np.inf]), 0.06),
        _Case("a single point within tolerance", np.logspace(-3, 1, 5), np.array([0.8, 0.6, 0.3, 0.55, 0.9]), 0.1),
        _Case("a far point within tolerance, cut off by a bad one", np.logspace(-5, 0, 11),
              np.array([0.31, 0.32, 0.6, 0.33, 0.3, 0.31, 0.5, 0.9, 1.0, 3.0, 9.0]), 0.05),
    ]
    mistakes = [
        _Mistake("That is the width of the whole grid; count only the learning rates whose score is within "
                 "tolerance of the best.", _tolerance_variant(whole=True)),
        _Mistake("The width seems to be linear (lr_high − lr_low); measure it in decades: "
                 "log10(lr_high) − log10(lr_low).", _tolerance_variant(linear=True)),
        _Mistake("Points within tolerance but cut off from the best by a worse one seem to be counted; keep only "
                 "the contiguous run around the best.", _tolerance_variant(anywhere=True)),
        _Mistake("A score exactly at best + tolerance counts as within tolerance (≤, not <).",
                 _tolerance_variant(strict=True)),
    ]
    return _Spec("lr_tolerance_width", "fn(lrs, scores, tolerance) -> decades", ("decades",), cases,
                 _tolerance_ref, mistakes,
                 covers="a valley, the grid's edge, a single point, a cut-off point, a score on the boundary")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 11: Lion and Sophia


def _lion_ref(theta, grad, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
    theta, s = _rule(Lion, theta, grad, {"exp_avg": m}, decay="decoupled", lr=lr, betas=tuple(betas),
                     weight_decay=weight_decay)
    return theta, s["exp_avg"]


def _lion_variant(sign_of="c", m_beta1=False, wd_lr=True):
    def step(theta, grad, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        b1, b2 = betas
        c = b1 * m + (1 - b1) * grad
        new = c if m_beta1 else b2 * m + (1 - b2) * grad
        direction = {"c": c, "m": new, "old": m}[sign_of]
        theta = theta * (1 - (lr if wd_lr else 1.0) * weight_decay)
        return theta - lr * np.sign(direction), new
    return step


@_check
def lion_step():
    """Check ``fn(theta, grad, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0) -> (theta, m)``: Lion as
    optimlab.Lion and lion-pytorch, pure:
    u = β₁m + (1 − β₁)g, θ ← θ(1 − ηλ) − η sign(u), m ← β₂m + (1 − β₂)g. ``m`` starts at zeros.
    """
    cases = _optimizer_cases(_normal_state, [
        ("a later step with decay", {"lr": 0.01, "weight_decay": 0.1}),
        ("small β = (0.5, 0.6), η = 0.3, λ = 1", {"lr": 0.3, "betas": (0.5, 0.6), "weight_decay": 1.0}),
        ("β = (0.2, 0.95), η = 0.1, λ = 0.5", {"lr": 0.1, "betas": (0.2, 0.95), "weight_decay": 0.5}),
    ], seed=18)
    mistakes = [
        _Mistake("The step seems to use sign(m) of the updated buffer; Lion steps with sign(u), "
                 "u = β₁m + (1 − β₁)g with the old m, and only then updates m with β₂.",
                 _lion_variant(sign_of="m")),
        _Mistake("The step seems to use sign(m) of the old buffer; Lion steps with sign(u), u = β₁m + (1 − β₁)g.",
                 _lion_variant(sign_of="old")),
        _Mistake("m seems to be updated with β₁ (it is c); the buffer uses β₂: m ← β₂m + (1 − β₂)g.",
                 _lion_variant(m_beta1=True)),
        _Mistake("The decay seems not to be scaled by the learning rate: θ ← θ(1 − ηλ), not θ(1 − λ).",
                 _lion_variant(wd_lr=False)),
    ]
    return _Spec("lion_step", "fn(theta, grad, m, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0) -> (theta, m)",
                 ("theta", "m"), cases, _lion_ref, mistakes, step=(0, 0), covers=OPT_COVERS)


def _normal_state(rng, shape, dtype, fresh):
    return (_zeros_or(rng, shape, dtype, fresh, lambda r, s, dtype: _normal(r, s, 0.5, dtype)),)


def _sophia_state(rng, shape, dtype, fresh):
    m = _zeros_or(rng, shape, dtype, fresh, lambda r, s, dtype: _normal(r, s, 0.1, dtype))
    return m, (rng.uniform(0, 2e-3, shape)).astype(dtype) if not fresh else np.zeros(shape, dtype)


def _sophia_ref(theta, grad, m, hessian, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, eps=1e-15, bs=5120):
    if eps != 1e-15:  # optimlab.SophiaG adds the authors' 1e-15; another ε only shifts the denominator
        hessian = np.asarray(hessian, np.float64) + (eps - 1e-15) / (rho * bs)
    theta, s = _rule(SophiaG, theta, grad, {"exp_avg": m, "hessian": hessian}, decay="decoupled", lr=lr,
                     betas=(beta1, 0.99), rho=rho, weight_decay=weight_decay, bs=bs)
    return theta, s["exp_avg"]


def _sophia_variant(clip=True, signed=True, wd_lr=True, old=False, no_bs=False):
    def step(theta, grad, m, hessian, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, eps=1e-15, bs=5120):
        theta = theta * (1 - (lr if wd_lr else 1.0) * weight_decay)
        new = beta1 * m + (1 - beta1) * grad
        mm = m if old else new
        ratio = np.abs(mm) / (rho * (1 if no_bs else bs) * hessian + eps)
        if clip:
            ratio = np.minimum(ratio, 1.0)
        return theta - lr * (np.sign(mm) if signed else 1.0) * ratio, new
    return step


@_check
def sophia_step():
    """Check ``fn(theta, grad, m, hessian, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, eps=1e-15, bs=5120)
    -> (theta, m)``: the parameter update of optimlab.SophiaG (the authors' SophiaG) for a given Hessian EMA h:

    θ ← θ(1 − ηλ); m ← β₁m + (1 − β₁)g; θ ← θ − η sign(m) min(|m|/(ρ·bs·h + ε), 1).
    ``hessian`` (h) is left alone (its refresh is another function); ``m`` starts at zeros.
    """
    cases = _optimizer_cases(_sophia_state, [
        ("a later step, some coordinates clipped", {"lr": 0.01}),
        ("η = 0.5, λ = 0.5, β₁ = 0.5", {"lr": 0.5, "beta1": 0.5, "weight_decay": 0.5}),
        ("ρ = 0.01, bs = 20000, ε = 1e-4, η = 0.1", {"lr": 0.1, "rho": 0.01, "bs": 20000, "eps": 1e-4}),
    ], seed=19, first_hyper={"lr": 0.01})
    mistakes = [
        _Mistake("The step seems not to be clipped: each coordinate moves by at most η, "
                 "η·sign(m)·min(|m|/(ρ·bs·h + ε), 1).", _sophia_variant(clip=False)),
        _Mistake("The clipped step seems to have lost its sign: η·sign(m)·min(|m|/(ρ·bs·h + ε), 1) moves against "
                 "the momentum.", _sophia_variant(signed=False)),
        _Mistake("The decay seems not to be scaled by the learning rate: θ ← θ(1 − ηλ), not θ(1 − λ).",
                 _sophia_variant(wd_lr=False)),
        _Mistake("The step seems to use the old m: update m ← β₁m + (1 − β₁)g first.", _sophia_variant(old=True)),
        _Mistake("bs seems to be missing from the denominator: ρ·bs·h + ε.", _sophia_variant(no_bs=True)),
    ]
    return _Spec("sophia_step", "fn(theta, grad, m, hessian, lr=1e-4, beta1=0.965, rho=0.04, weight_decay=1e-1, "
                                "eps=1e-15, bs=5120) -> (theta, m)",
                 ("theta", "m"), cases, _sophia_ref, mistakes, step=(0, 0), covers=OPT_COVERS)


# ----------------------------------------------------------------------------------------------------------------
# Chapter 12: Muon, Shampoo and SOAP


def _ns_ref(G, steps=5, coefficients=NS_COEFFICIENTS, eps=1e-7):
    return _newton_schulz(np.asarray(G, dtype=np.float64), tuple(coefficients), steps, eps)


def _ns_variant(normalize="max", swap=False, wrong_side=False, square_only=False):
    """A typical mistake; ``square_only`` makes the wrong side defined on every shape (right where it would crash),
    so that the module's own list can be tested as answers."""
    def ns(G, steps=5, coefficients=NS_COEFFICIENTS, eps=1e-7):
        a, b, c = coefficients
        if swap:
            b, c = c, b
        X = np.asarray(G, dtype=np.float64)
        tall = X.shape[0] > X.shape[1]
        X = X.T if tall else X
        norm = np.linalg.norm(X)
        X = {"max": X / max(norm, eps), "add": X / (norm + eps), "spectral": X / max(np.linalg.norm(X, 2), eps),
             "none": X}[normalize]
        for _ in range(steps):
            A = X.T @ X if wrong_side and (X.shape[0] == X.shape[1] or not square_only) else X @ X.T
            X = a * X + (b * A + c * A @ A) @ X
        return X.T if tall else X
    return ns


# A = XᵀX multiplied on the left fails on a rectangular matrix (a crash, reported with this hint) and gives a
# wrong answer on a square one (the first case, so the mistake is named there when it is the only one).
WRONG_SIDE = ("A matrix product has mismatched shapes: is A = XᵀX on the wrong side? With X ← aX + (bA + cA²)X, A "
              "must be XXᵀ (the Gram matrix of the rows, the small one in the wide orientation).")


@_check
def newton_schulz():
    """Check ``fn(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7) -> X``: the Newton–Schulz
    orthogonalisation of Muon, as torch.optim.Muon and optimlab.matrix.newton_schulz do it, in float64.

    Work with the wide orientation (transpose G when it has more rows than columns), normalise
    X = G / max(‖G‖_F, ε), then ``steps`` times X ← aX + (bA + cA²)X with A = XXᵀ, and transpose back.
    The result is about UVᵀ for G = USVᵀ; it keeps G's shape.
    """
    rng = _rng(20)
    cases = []
    for shape, scale, kwargs, what in [
        ((4, 4), 1.0, {}, "a square matrix, the defaults"),
        ((3, 5), 1.0, {}, "a wide matrix, the defaults"),
        ((6, 3), 0.01, {}, "a tall matrix with small entries, the defaults"),
        ((5, 8), 3.0, {"steps": 2}, "two steps"),
        ((7, 4), 1.0, {"steps": 8, "coefficients": (1.5, -0.5, 0.0)}, "the cubic iteration (1.5, −0.5, 0), 8 steps"),
        ((3, 3), 1e-8, {}, "a tiny matrix, ‖G‖ below ε"),
        ((4, 6), 1.0, {"steps": 0, "eps": 1e-3}, "no steps, ε = 1e-3"),
    ]:
        cases.append(_Case(_where(shape, np.float64, what), _normal(rng, shape, scale), **kwargs))
    cases.append(_Case(_where((2, 5), np.float64, "a zero matrix"), np.zeros((2, 5))))
    mistakes = [
        _Mistake("The normalisation seems to be missing: divide G by its Frobenius norm first, X = G/max(‖G‖_F, ε), "
                 "so that every singular value starts in (0, 1], where the iteration pulls it towards 1.",
                 _ns_variant(normalize="none")),
        _Mistake("ε seems to be added to the norm, G/(‖G‖_F + ε): that is Keller Jordan's code; torch and "
                 "optimlab divide by max(‖G‖_F, ε). The two differ only when ‖G‖_F is close to ε.",
                 _ns_variant(normalize="add")),
        _Mistake("The normalisation seems to use the spectral norm, G/σ_max; Muon divides by the Frobenius norm, "
                 "which is cheap (no SVD) and at least σ_max, so the iteration starts with smaller values.",
                 _ns_variant(normalize="spectral")),
        _Mistake(WRONG_SIDE.split("? ", 1)[1].replace("With", "A seems to be XᵀX on the wrong side: with"),
                 _ns_variant(wrong_side=True, square_only=True)),
        _Mistake("b and c seem to be swapped: X ← aX + (bA + cA²)X, with b = −4.7750 on A and c = 2.0315 on A².",
                 _ns_variant(swap=True)),
    ]
    return _Spec("newton_schulz", "fn(G, steps=5, coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7) -> X", ("X",),
                 cases, _ns_ref, mistakes,
                 covers="square, wide and tall matrices, 0, 2, 5 and 8 steps, the cubic coefficients, "
                        "a tiny and a zero matrix", shape_hint=WRONG_SIDE)


def _muon_state(rng, shape, dtype, fresh):
    return (_zeros_or(rng, shape, dtype, fresh, lambda r, s, dtype: _normal(r, s, 0.5, dtype)),)


def _muon_ref(theta, grad, buf, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, adjust_lr_fn=None):
    theta, s = _rule(Muon, theta, grad, {"momentum_buffer": buf}, decay="decoupled", lr=lr, momentum=momentum,
                     nesterov=nesterov, weight_decay=weight_decay, adjust_lr_fn=adjust_lr_fn)
    return theta, s["momentum_buffer"]


def _muon_variant(undamped=False, no_nesterov=False, decay_adjusted=False, ratio_flipped=False):
    def step(theta, grad, buf, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, adjust_lr_fn=None):
        theta, g, m = (np.asarray(x, np.float64) for x in (theta, grad, buf))
        m = momentum * m + (1 if undamped else 1 - momentum) * g
        u = (g if undamped else (1 - momentum) * g) + momentum * m if nesterov and not no_nesterov else m
        rows, cols = theta.shape
        if adjust_lr_fn == "match_rms_adamw":
            scale = 0.2 * max(rows, cols) ** 0.5
        else:
            scale = max(1.0, (cols / rows if ratio_flipped else rows / cols)) ** 0.5
        theta = theta * (1 - lr * (scale if decay_adjusted else 1.0) * weight_decay)
        return theta - lr * scale * _newton_schulz(u), m
    return step


@_check
def muon_update():
    """Check ``fn(theta, grad, buf, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, adjust_lr_fn=None)
    -> (theta, buf)``: one step of torch.optim.Muon (and optimlab.Muon) for a 2-D parameter, pure, in float64:

    m ← βm + (1 − β)g (torch's lerp); u = (1 − β)g + βm with Nesterov, else u = m; O = NS(u) with the defaults of
    :func:`newton_schulz`; θ ← θ(1 − ηλ) with the unadjusted η; θ ← θ − η′O, where η′ = η√max(1, rows/cols)
    (``adjust_lr_fn`` None or "original") or η′ = 0.2η√max(rows, cols) ("match_rms_adamw"). ``buf`` starts at zeros.
    """
    rng = _rng(21)
    cases = []

    def add(what, shape, fresh, kwargs, dtype=np.float64, zero=False, first=False):
        theta = _normal(rng, shape, dtype=dtype)
        g = np.zeros(shape, dtype) if zero else _normal(rng, shape, 0.1, dtype)
        (buf,) = _muon_state(rng, shape, dtype, fresh)
        cases.append(_Case(_where(shape, dtype, what), theta, g, buf, first=first, **kwargs))

    add("the first step (buffer 0)", (3, 4), True, {"lr": 0.02}, first=True)
    add("the first step (buffer 0)", (6, 3), True, {"lr": 0.02}, dtype=np.float32, first=True)
    add("zero gradients on the first step", (4, 4), True, {"lr": 0.02}, zero=True, first=True)
    add("zero gradients on a later step", (3, 4), False, {"lr": 0.02}, zero=True)
    add("a later step, a tall matrix", (6, 3), False, {"lr": 0.05, "momentum": 0.9})
    add("a later step without Nesterov", (4, 4), False, {"lr": 0.05, "nesterov": False})
    add("η = 0.5, λ = 0.5, a tall matrix", (8, 2), False, {"lr": 0.5, "weight_decay": 0.5})
    add("match_rms_adamw, a tall matrix, λ = 0.2", (6, 4), False,
        {"lr": 0.01, "weight_decay": 0.2, "adjust_lr_fn": "match_rms_adamw"})
    add("adjust_lr_fn='original', β = 0.5", (5, 3), False, {"lr": 0.1, "momentum": 0.5, "adjust_lr_fn": "original"})
    add("a later step", (3, 5), False, {"lr": 0.02}, dtype=np.float32)
    add("the defaults, a later step", (4, 3), False, {})
    mistakes = [
        _Mistake("The buffer seems to be βm + g (SGD's form, and what torch's docstring writes); torch's code and "
                 "optimlab average, m ← βm + (1 − β)g. After orthogonalisation the first step is the same, since "
                 "the two buffers then differ by a factor, but the buffer you return is not.",
                 _muon_variant(undamped=True), on=(1,)),
        _Mistake("nesterov=True seems to be ignored: with Nesterov, orthogonalise u = (1 − β)g + βm (with the new m), "
                 "not m.", _muon_variant(no_nesterov=True), on=(0,)),
        _Mistake("The decay seems to use the adjusted learning rate: torch decays θ(1 − ηλ) with the η you pass; "
                 "only the orthogonalised step uses η′.", _muon_variant(decay_adjusted=True), on=(0,)),
        _Mistake("The shape adjustment seems to be the wrong way round: η′ = η√max(1, rows/cols), which is larger "
                 "than η for a tall matrix (more rows than columns).", _muon_variant(ratio_flipped=True), on=(0,)),
    ]
    return _Spec("muon_update", "fn(theta, grad, buf, lr=1e-3, momentum=0.95, nesterov=True, weight_decay=0.1, "
                                "adjust_lr_fn=None) -> (theta, buf)",
                 ("theta", "buf"), cases, _muon_ref, mistakes, step=(0, 0),
                 covers="the first step, later steps, zero gradients, float32, square, wide and tall matrices, "
                        "Nesterov on and off, both shape adjustments, the defaults")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 13: Schedule-Free, Prodigy and weight averaging


def _sf_ref(y, z, x, grad, t, lr, beta=0.9):
    """Schedule-Free SGD's step from its three definitions, in float64, with c = 1/t. optimlab.SGDScheduleFree
    takes the same steps (tests/test_check.py) through the closed form of
    :func:`optimlab.schedule_free.average_step`, valid only when the y given is βx + (1 − β)z; written from the
    definitions, the reference tells an answer that ignores β."""
    y, z, x, g = (np.asarray(a, dtype=np.float64) for a in (y, z, x, grad))
    c = 1.0 / t
    z = z - lr * g
    x = (1 - c) * x + c * z
    return beta * x + (1 - beta) * z, z, x


def _sf_variant(c_shift=0, swap_beta=False, old_z=False, old_x=False):
    def step(y, z, x, grad, t, lr, beta=0.9):
        y, z, x, g = (np.asarray(a, dtype=np.float64) for a in (y, z, x, grad))
        c = 1.0 / (t + c_shift)
        z_new = z - lr * g
        x_new = (1 - c) * x + c * (z if old_z else z_new)
        b = 1 - beta if swap_beta else beta
        return b * (x if old_x else x_new) + (1 - b) * z_new, z_new, x_new
    return step


@_check
def schedule_free_step():
    """Check ``fn(y, z, x, grad, t, lr, beta=0.9) -> (y, z, x)``: one step of Schedule-Free SGD as
    optimlab.SGDScheduleFree and the ``schedulefree`` package take it with no warm-up and no weight decay, pure:

    z ← z − η g (g is the gradient at y), x ← (1 − c)x + c z with c = 1/t, y ← βx + (1 − β)z, all with the new
    z and x. t counts steps from 1; on the first step y = z = x (the start), so x becomes the new z.
    With a constant η the package's weights w_t = η² give c = w_t/Σw = 1/t.
    """
    rng = _rng(22)
    cases = []

    def add(what, shape, t, lr, kwargs, dtype=np.float64, zero=False, first=False):
        beta = kwargs.get("beta", 0.9)
        if t == 1:
            z = x = _normal(rng, shape, dtype=dtype)
        else:
            z, x = _normal(rng, shape, dtype=dtype), _normal(rng, shape, 0.5, dtype)
        y = (beta * x.astype(np.float64) + (1 - beta) * z.astype(np.float64)).astype(dtype)
        g = np.zeros(shape, dtype) if zero else _normal(rng, shape, dtype=dtype)
        label = _where(shape, dtype, what + (f" (t = {t})" if t > 1 else ""))
        cases.append(_Case(label, y, z.copy(), x.copy(), g, t, lr, first=first, **kwargs))

    add("the first step (t = 1), y = z = x", (5,), 1, 0.1, {}, first=True)
    add("the first step (t = 1), y = z = x", (3, 4), 1, 0.5, {"beta": 0.5}, dtype=np.float32, first=True)
    add("zero gradients on the first step", (5,), 1, 0.1, {}, zero=True, first=True)
    add("zero gradients on a later step", (3, 4), 4, 0.1, {}, zero=True)
    add("a later step", (5,), 2, 0.2, {})
    add("a later step, β = 0.5, η = 1", (3, 4), 7, 1.0, {"beta": 0.5})
    add("β = 0.98, η = 0.05", (5,), 30, 0.05, {"beta": 0.98})
    add("a later step", (3, 4), 5, 0.3, {"beta": 0.7}, dtype=np.float32)
    add("the default β = 0.9, a later step", (5,), 3, 0.5, {})
    mistakes = [
        _Mistake("The averaging weight seems to be c = 1/(t + 1): with t counting from 1, the first step has c = 1 "
                 "(x becomes the new z) and step t has c = 1/t, so that x is the plain average of z₁, ..., z_t.",
                 _sf_variant(c_shift=1)),
        _Mistake("β seems to weight z instead of x: y = βx + (1 − β)z, so that β → 1 takes gradients at the "
                 "average x and β → 0 at the base iterate z.", _sf_variant(swap_beta=True)),
        _Mistake("x seems to be averaged with the old z; take the gradient step first, z ← z − ηg, then average "
                 "the new z into x.", _sf_variant(old_z=True)),
        _Mistake("y seems to be built from the old x; update x first, then y = βx + (1 − β)z with the new x and z.",
                 _sf_variant(old_x=True), on=(0,)),
    ]
    return _Spec("schedule_free_step", "fn(y, z, x, grad, t, lr, beta=0.9) -> (y, z, x)", ("y", "z", "x"), cases,
                 _sf_ref, mistakes, step=(0, 0),
                 covers="the first step t = 1, later steps, zero gradients, float32, shapes (5,) and (3, 4), "
                        "β from 0.5 to 0.98, the default β")


def _average_ref(avg, params, n_averaged, decay=None):
    params = [np.asarray(p, dtype=np.float64) for p in params]
    if n_averaged == 0:
        return [p.copy() for p in params]
    weight = 1.0 / (n_averaged + 1) if decay is None else 1.0 - decay
    return [a + weight * (p - a) for a, p in zip((np.asarray(a, dtype=np.float64) for a in avg), params)]


def _average_variant(divide_by_n=False, swapped=False, no_copy=False):
    def update(avg, params, n_averaged, decay=None):
        avg = [np.asarray(a, dtype=np.float64) for a in avg]
        params = [np.asarray(p, dtype=np.float64) for p in params]
        if n_averaged == 0 and not no_copy:
            return [p.copy() for p in params]
        if decay is None:
            weight = 1.0 / max(n_averaged if divide_by_n else n_averaged + 1, 1)
        else:
            weight = decay if swapped else 1.0 - decay
        return [a + weight * (p - a) for a, p in zip(avg, params)]
    return update


@_check
def average_weights():
    """Check ``fn(avg, params, n_averaged, decay=None) -> avg``: one update of an averaged copy of the weights,
    as torch.optim.swa_utils.AveragedModel.update_parameters does it, pure. ``avg`` and ``params`` are lists of
    arrays (the averaged model's and the trained model's), ``n_averaged`` the number of models averaged so far:

    the first update (n_averaged = 0) copies ``params``; later ones move each array towards the parameters,
    avg ← avg + w(θ − avg), with w = 1/(n_averaged + 1) for SWA's running mean (``decay`` None) or w = 1 − decay
    for an exponential moving average (EMA: avg ← decay·avg + (1 − decay)·θ).
    """
    rng = _rng(23)
    cases = []

    def add(what, n, kwargs, dtype=np.float64):
        avg = [_normal(rng, shape, dtype=dtype) for shape in SHAPES]
        params = [_normal(rng, shape, dtype=dtype) for shape in SHAPES]
        if n == 0:
            avg = [np.zeros_like(a) for a in avg]
        label = f"{what}, n_averaged = {n}, arrays of shapes (5,) and (3, 4), {np.dtype(dtype).name}"
        cases.append(_Case(label, avg, params, n, **kwargs))

    add("SWA, the first update", 0, {})
    add("SWA, the second update", 1, {})
    add("SWA, a later update", 9, {})
    add("EMA with decay 0.9, the first update", 0, {"decay": 0.9})
    add("EMA with decay 0.9, a later update", 3, {"decay": 0.9})
    add("EMA with decay 0.5, a later update", 12, {"decay": 0.5})
    add("EMA with decay 0.999, a later update", 100, {"decay": 0.999}, dtype=np.float32)
    add("SWA, a later update", 4, {}, dtype=np.float32)
    mistakes = [
        _Mistake("The running mean seems to divide by n_averaged instead of n_averaged + 1: after n models the "
                 "mean of n + 1 is avg + (θ − avg)/(n + 1).", _average_variant(divide_by_n=True)),
        _Mistake("decay and 1 − decay seem to be swapped: an EMA keeps most of the average, "
                 "avg ← decay·avg + (1 − decay)·θ.", _average_variant(swapped=True)),
        _Mistake("The first update seems not to copy the parameters: with n_averaged = 0 the average is empty "
                 "(whatever avg holds), and torch's AveragedModel starts it as a copy of θ.",
                 _average_variant(no_copy=True)),
    ]
    return _Spec("average_weights", "fn(avg, params, n_averaged, decay=None) -> avg", ("avg",), cases, _average_ref,
                 mistakes, covers="SWA's running mean and EMAs, the first update, later updates, float32, "
                                  "two arrays of shapes (5,) and (3, 4)")
# Chapter 14: how hyperparameters scale


def _scaled_lr_ref(lr, batch, base_batch, rule="linear", critical_batch=None):
    batch, base_batch = float(batch), float(base_batch)
    if critical_batch is not None:
        batch, base_batch = min(batch, critical_batch), min(base_batch, critical_batch)
    ratio = batch / base_batch
    return float(lr * (ratio if rule == "linear" else math.sqrt(ratio)))


def _scaled_lr_variant(inverted=False, always=None, cap_base=True):
    def scaled(lr, batch, base_batch, rule="linear", critical_batch=None):
        if critical_batch is not None:
            batch = min(batch, critical_batch)
            base_batch = min(base_batch, critical_batch) if cap_base else base_batch
        ratio = base_batch / batch if inverted else batch / base_batch
        return float(lr * (ratio if (always or rule) == "linear" else math.sqrt(ratio)))
    return scaled


@_check
def scaled_lr():
    """Check ``fn(lr, batch, base_batch, rule="linear", critical_batch=None) -> lr``: the learning rate for a new
    batch size, from one tuned at ``base_batch``.

    ``rule="linear"`` multiplies ``lr`` by B/B₀ (SGD, Goyal et al. 2017), ``rule="sqrt"`` by √(B/B₀) (Adam,
    Malladi et al. 2022). Beyond a critical batch size ``critical_batch`` the learning rate stops growing: both
    batch sizes are capped at it first, B ← min(B, B_crit) and B₀ ← min(B₀, B_crit) (no cap when None).
    """
    cases = [
        _Case("SGD from B₀ = 256 to B = 1024", 0.1, 1024, 256, "linear"),
        _Case("SGD from B₀ = 256 down to B = 64", 0.1, 64, 256, "linear"),
        _Case("Adam from B₀ = 256 to B = 4096", 1e-3, 4096, 256, "sqrt"),
        _Case("Adam from B₀ = 256 down to B = 64", 1e-3, 64, 256, "sqrt"),
        _Case("the default rule, from B₀ = 32 to B = 96", 0.05, 96, 32),
        _Case("SGD past a critical batch of 512", 0.1, 2048, 256, "linear", critical_batch=512),
        _Case("Adam past a critical batch of 2048", 3e-4, 8192, 512, "sqrt", critical_batch=2048),
        _Case("SGD from B₀ = 1024 above a critical batch of 256 down to B = 64", 0.4, 64, 1024, "linear",
              critical_batch=256),
        _Case("SGD below a critical batch of 4096", 0.1, 128, 64, "linear", critical_batch=4096),
    ]
    mistakes = [
        _Mistake("The ratio seems to be upside down: a larger batch averages away noise and allows a *larger* "
                 "learning rate, η·B/B₀ (or η·√(B/B₀)).", _scaled_lr_variant(inverted=True)),
        _Mistake("rule='sqrt' seems to scale linearly: the square-root rule multiplies by √(B/B₀).",
                 _scaled_lr_variant(always="linear")),
        _Mistake("rule='linear' seems to take the square root: the linear rule multiplies by B/B₀ itself.",
                 _scaled_lr_variant(always="sqrt")),
        _Mistake("Only the new batch seems to be capped at critical_batch: cap the base batch too, "
                 "min(B, B_crit)/min(B₀, B_crit); a base batch above the critical one gains nothing from its size.",
                 _scaled_lr_variant(cap_base=False)),
    ]
    return _Spec("scaled_lr", 'fn(lr, batch, base_batch, rule="linear", critical_batch=None) -> lr', ("lr",),
                 cases, _scaled_lr_ref, mistakes,
                 covers="larger and smaller batches, both rules, the default rule, a critical batch below, above "
                        "and between the two batch sizes")


def _noise_scale_ref(per_example_grads):
    g = np.asarray(per_example_grads, dtype=np.float64)
    g = g.reshape(len(g), -1)
    n, mean = len(g), g.mean(axis=0)
    trace = np.sum((g - mean) ** 2) / (n - 1)          # tr Σ, unbiased
    return float(trace / (mean @ mean - trace / n))    # |G|² unbiased: |ḡ|² − tr Σ / n


def _noise_scale_variant(ddof=1, corrected=True, of_mean=False, uncentered=False, inverted=False):
    def scale(per_example_grads):
        g = np.asarray(per_example_grads, dtype=np.float64)
        g = g.reshape(len(g), -1)
        n, mean = len(g), g.mean(axis=0)
        trace = np.sum(g**2) / n if uncentered else np.sum((g - mean) ** 2) / (n - ddof)
        square = mean @ mean - (trace / n if corrected else 0.0)
        trace = trace / n if of_mean else trace
        return float(square / trace if inverted else trace / square)
    return scale


@_check
def noise_scale():
    """Check ``fn(per_example_grads) -> B_simple``: the simple gradient noise scale tr(Σ)/|G|² of McCandlish et
    al. (2018) from n per-example gradients (an array of shape (n, ...), one gradient per row).

    With ḡ the mean of the n gradients: tr Σ = Σᵢ ‖gᵢ − ḡ‖²/(n − 1), the unbiased estimate of the trace of the
    per-example covariance, and |G|² = ‖ḡ‖² − tr Σ / n, the unbiased estimate of the squared norm of the true
    gradient (‖ḡ‖² alone is too large by the noise of the mean, tr Σ/n). Sums run over every coordinate.
    """
    rng = _rng(22)
    cases = []
    for what, n, shape, noise, dtype in (("10 gradients of 5 coordinates", 10, (5,), 0.5, np.float64),
                                         ("50 noisy gradients of 20 coordinates", 50, (20,), 3.0, np.float64),
                                         ("4 gradients of 3 coordinates", 4, (3,), 0.3, np.float64),
                                         ("200 gradients of 10 coordinates", 200, (10,), 2.0, np.float32),
                                         ("8 gradients of a 3×4 matrix", 8, (3, 4), 0.4, np.float64)):
        true = rng.normal(1.0, 0.2, shape)
        grads = (true + noise * rng.standard_normal((n, *shape))).astype(dtype)
        cases.append(_Case(_where((n, *shape), dtype, what), grads))
    cases.append(_Case(_where((6, 4), np.float64, "6 identical gradients (no noise)"),
                       np.tile(rng.standard_normal(4), (6, 1))))
    mistakes = [
        _Mistake("The variance seems to divide by n (ddof=0): the unbiased estimate of tr Σ divides the sum of "
                 "squared deviations by n − 1.", _noise_scale_variant(ddof=0)),
        _Mistake("|G|² seems to be ‖ḡ‖² itself: the mean of n noisy gradients carries noise tr Σ/n, so the "
                 "unbiased estimate is ‖ḡ‖² − tr Σ/n.", _noise_scale_variant(corrected=False)),
        _Mistake("That is the noise of the *mean* gradient, tr Σ/n, over |G|²: the noise scale uses the "
                 "per-example covariance Σ (the noise of a batch of one).", _noise_scale_variant(of_mean=True)),
        _Mistake("tr Σ seems to be the mean of ‖gᵢ‖², which is not centred: subtract the mean gradient first, "
                 "Σᵢ ‖gᵢ − ḡ‖²/(n − 1).", _noise_scale_variant(uncentered=True)),
        _Mistake("The ratio seems to be upside down: B_simple = tr Σ / |G|², large when the noise dominates.",
                 _noise_scale_variant(inverted=True)),
    ]
    return _Spec("noise_scale", "fn(per_example_grads) -> B_simple", ("B_simple",), cases, _noise_scale_ref,
                 mistakes, covers="4 to 200 gradients, vectors and a matrix, float32, no noise at all")


# ----------------------------------------------------------------------------------------------------------------
# Chapter 15: model families


def _lr_against_ref(scores, higher_is_better=True):
    s = np.asarray(scores, dtype=np.float64)
    spread = (s.max(axis=1) - s.min(axis=1)).min()
    best = s.max(axis=1) if higher_is_better else s.min(axis=1)
    return float(spread), float(best.max() - best.min())


def _lr_against_variant(spread="least", gap="tuned", flag=True):
    def measure(scores, higher_is_better=True):
        s = np.asarray(scores, dtype=np.float64)
        up = higher_is_better if flag else True
        ranges = s.max(axis=1) - s.min(axis=1)
        width = {"least": ranges.min(), "most": ranges.max(), "whole": s.max() - s.min()}[spread]
        if gap == "mean":
            best = s.mean(axis=1)
        elif gap == "shared":   # every contender at the column where the first one is best
            best = s[:, int(np.argmax(s[0]) if up else np.argmin(s[0]))]
        else:
            best = s.max(axis=1) if up else s.min(axis=1)
        return float(width), float(best.max() - best.min())
    return measure


@_check
def lr_against_optimizer():
    """Check ``fn(scores, higher_is_better=True) -> (lr_spread, optimizer_gap)``: does the learning rate matter more
    than the optimizer? ``scores[i, k]`` is contender i's validation score at the k-th learning rate of its own
    grid (one row per optimizer, the grids of equal length).

    ``lr_spread`` is how much the score moves over the grid for the *least* sensitive contender: the smallest, over
    the rows, of max − min along the row. ``optimizer_gap`` is how far apart the contenders are once each is tuned:
    each row's best score (its maximum, or its minimum when ``higher_is_better`` is False), then the largest best
    minus the smallest best.
    """
    rng = _rng(23)
    grid = np.arange(5.0)
    cases = []
    for what, centres, peaks, width, higher in (
            ("two optimizers, accuracy (higher is better)", (2.0, 1.0), (0.95, 0.93), (0.08, 0.2), True),
            ("three optimizers, loss (lower is better)", (1.0, 2.0, 3.0), (0.30, 0.25, 0.41), (0.3, 0.1, 0.5), False),
            ("two optimizers, one much more forgiving", (2.0, 3.0), (0.88, 0.90), (0.01, 0.3), True),
            ("two optimizers with their best at different rates, loss", (3.0, 1.0), (1.2, 1.1), (0.4, 0.2), False)):
        sign = -1.0 if higher else 1.0
        rows = [p - sign * w * (grid - c) ** 2 + 0.01 * rng.standard_normal(grid.size)
                for c, p, w in zip(centres, peaks, width)]
        cases.append(_Case(what, np.array(rows), higher_is_better=higher))
    cases.append(_Case("seven learning rates, the default higher_is_better",
                       np.array([[0.2, 0.5, 0.8, 0.9, 0.85, 0.6, 0.1], [0.4, 0.6, 0.7, 0.75, 0.8, 0.7, 0.3]])))
    mistakes = [
        _Mistake("lr_spread seems to be the spread of the *most* sensitive contender: take the smallest spread over "
                 "the rows, so that the learning rate matters even for the most forgiving optimizer.",
                 _lr_against_variant(spread="most"), on=(0,)),
        _Mistake("lr_spread seems to be max − min of the whole table: measure it along each row (one optimizer "
                 "over its own grid), then take the smallest.", _lr_against_variant(spread="whole"), on=(0,)),
        _Mistake("optimizer_gap seems to compare the contenders at one shared learning rate: compare each at its "
                 "own best, the maximum (or minimum) of its row.", _lr_against_variant(gap="shared"), on=(1,)),
        _Mistake("optimizer_gap seems to use each row's mean over the grid: a tuned optimizer is scored at its "
                 "best learning rate, the row's maximum (or minimum).", _lr_against_variant(gap="mean"), on=(1,)),
        _Mistake("With higher_is_better=False the best score of a row is its minimum (a loss), not its maximum.",
                 _lr_against_variant(flag=False), on=(1,)),
    ]
    return _Spec("lr_against_optimizer", "fn(scores, higher_is_better=True) -> (lr_spread, optimizer_gap)",
                 ("lr_spread", "optimizer_gap"), cases, _lr_against_ref, mistakes,
                 covers="two and three optimizers, five and seven rates, accuracies and losses, the default flag")


def _refined_grid_ref(lrs, scores, higher_is_better=True):
    lrs, scores = np.asarray(lrs, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    n = lrs.size
    k = int(np.argmax(scores) if higher_is_better else np.argmin(scores))
    log_step = math.log(lrs[1] / lrs[0])
    if 0 < k < n - 1:
        log_step /= 2
    return lrs[k] * np.exp(log_step * (np.arange(n) - n // 2))


def _refined_grid_variant(always=False, linear=False, flag=True, middle=False, halved=False):
    def refine(lrs, scores, higher_is_better=True):
        lrs, scores = np.asarray(lrs, dtype=np.float64), np.asarray(scores, dtype=np.float64)
        n, up = lrs.size, higher_is_better if flag else True
        k = int(np.argmax(scores) if up else np.argmin(scores))
        centre = n // 2 if middle else k
        factor = lrs[1] / lrs[0]
        inside = 0 < k < n - 1
        if linear and inside:
            return np.linspace(lrs[k - 1], lrs[k + 1], n)
        if always or inside:
            factor = factor / 2 if halved else math.sqrt(factor)
        return lrs[centre] * factor ** (np.arange(n) - n // 2)
    return refine


@_check
def refined_grid():
    """Check ``fn(lrs, scores, higher_is_better=True) -> lrs``: the next grid of a learning-rate search.

    ``lrs`` is a log grid, sorted ascending with a constant factor between neighbours and an odd number of rates;
    ``scores[i]`` the validation score at ``lrs[i]``. The best rate is the one with the best score (the maximum, or
    the minimum when ``higher_is_better`` is False). The next grid has as many rates, centred on the best one. If
    the best is inside the grid, the true best lies between its two neighbours: the new grid spans them, a factor
    √(old factor) apart (half the step in log η). If the best is at an edge, the true best may lie beyond it: the new
    grid keeps the old factor and is only moved.
    """
    rng = _rng(24)
    cases = []
    for what, lowest, factor, n, best, higher in (
            ("five rates a factor √10 apart, the best inside, an accuracy", 1e-3, math.sqrt(10), 5, 3, True),
            ("five rates a factor √10 apart, the best at the smallest, a loss", 3e-5, math.sqrt(10), 5, 0, False),
            ("five rates a factor √10 apart, the best at the largest, an accuracy", 1e-4, math.sqrt(10), 5, 4, True),
            ("seven rates a factor 2 apart, the best inside, a loss", 0.01, 2.0, 7, 2, False),
            ("three rates a factor 10 apart, the best in the middle, the default flag", 1e-2, 10.0, 3, 1, None)):
        lrs = lowest * factor ** np.arange(n)
        distance = np.abs(np.arange(n) - best) + 0.1 * rng.random(n)
        scores = 1.0 - 0.1 * distance if higher in (True, None) else 0.2 + 0.3 * distance
        kwargs = {} if higher is None else {"higher_is_better": higher}
        cases.append(_Case(what, lrs, scores, **kwargs))
    mistakes = [
        _Mistake("At an edge the best rate may lie beyond the grid: keep the old factor and move the grid so that "
                 "it is centred on the best; refine only when the best is inside.", _refined_grid_variant(always=True)),
        _Mistake("The new rates seem to be spaced equally in η: a learning-rate grid is spaced by a constant factor "
                 "(equally in log η), here √(old factor).", _refined_grid_variant(linear=True)),
        _Mistake("With higher_is_better=False the best score is the minimum (a loss), not the maximum.",
                 _refined_grid_variant(flag=False)),
        _Mistake("The new grid seems to be centred on the old grid's middle: centre it on the best rate.",
                 _refined_grid_variant(middle=True)),
        _Mistake("Halving the step in log η takes the square root of the factor between neighbours, not half of "
                 "it: √10 ≈ 3.16 becomes 10^(1/4) ≈ 1.78.", _refined_grid_variant(halved=True)),
    ]
    return _Spec("refined_grid", "fn(lrs, scores, higher_is_better=True) -> lrs", ("lrs",), cases,
                 _refined_grid_ref, mistakes,
                 covers="the best inside and at either edge, three to seven rates, accuracies and losses, the default "
                        "flag")
