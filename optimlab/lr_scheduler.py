"""Learning-rate schedulers bound to an optimizer: ``torch.optim.lr_scheduler``'s names, arguments, counting.

A scheduler rewrites ``group["lr"]`` in its optimizer's parameter groups (and, for OneCycleLR and CyclicLR,
``group["momentum"]`` or ``group["betas"][0]``). The loop is torch's::

    opt = optimlab.SGD(params, lr=0.1)
    sched = optimlab.lr_scheduler.CosineAnnealingLR(opt, T_max=100)   # already wrote lr(0) into opt
    for k in range(100):
        opt.step(grads)      # uses lr(k)
        sched.step()         # last_epoch = k + 1, writes lr(k + 1)

Counting (torch's, including its off-by-ones):

* Construction sets ``group.setdefault("initial_lr", group["lr"])`` (so only the *first* scheduler on an
  optimizer sets it), takes ``base_lrs`` from ``initial_lr``, then runs one internal step: ``last_epoch`` goes
  from −1 to 0 and lr(0) is written. Several schedulers on one optimizer each apply their step-0 change.
* After ``n`` calls of :meth:`~LRScheduler.step`, ``last_epoch == n`` and the groups hold lr(n).
* ``last_epoch=k`` in a constructor resumes: the groups must already hold ``initial_lr`` (without it,
  ValueError naming the group and the key, where torch raises KeyError), and the internal step moves to k + 1
  (for StepLR it can apply one more decay, as in torch). To resume a run, build the scheduler normally and call
  ``load_state_dict`` on both the optimizer and the scheduler.
* Read :meth:`~LRScheduler.get_last_lr`. (torch's internal ``get_lr`` and deprecated ``step(epoch)`` are
  not provided; :meth:`~LRScheduler.closed_form` gives the closed form as pure schedules.)

Recursive versus closed form. StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR and
CosineAnnealingLR are *chainable*, as in torch: each step multiplies the **current** ``group["lr"]`` by a
factor, so anything else that changed the rate (another scheduler, a manual edit, a plateau cut) carries
forward. Their :meth:`~LRScheduler.closed_form` (the matching function of :mod:`optimlab.schedules`) computes
from the base rate instead; the two agree to rounding while nothing else touches the rate. LambdaLR, WSD,
CosineAnnealingWarmRestarts, OneCycleLR and CyclicLR compute absolute values.

Per group and per run: every group has its own base rate (discriminative learning rates), and a rate may be a
numpy array (a sweep: ``lr`` of shape (B, 1) over a (B, d) parameter); every row is scheduled as a scalar run
would be. Arrays are never changed in place: a new array is assigned.

Errors: a bad argument raises ``ValueError`` or ``TypeError`` naming the argument and the value, and a
constructor or ``step`` that raises leaves the optimizer's groups and the scheduler exactly as they were.

Deliberate differences from torch. The rates and momenta are torch's, number for number
(``tests/test_lr_scheduler_torch.py``); what differs is what is rejected, and a test written against torch
notices each of these:

* cycled momenta (OneCycleLR, CyclicLR ``base_momentum``/``max_momentum``) must lie in [0, 1]; torch accepts
  any value;
* a β₁ written by OneCycleLR or CyclicLR is checked by the optimizer's next step: outside [0, 1)
  (``max_momentum=1``) that step raises ValueError and changes nothing, where torch, which checks ``betas`` only
  in the optimizer's constructor, steps (NAdam), makes the parameters NaN (RAdam) or divides by zero (Adam,
  AdamW, Adamax);
* ``last_epoch >= 0`` without ``initial_lr`` (or, for OneCycleLR, its other keys) in the groups raises
  ValueError; torch raises KeyError;
* MultiStepLR's milestones must be sorted and ConstantLR's factor > 0 (torch accepts both and, for factor 0,
  divides by it at step T); OneCycleLR rejects a phase of zero length in the constructor (torch divides by zero
  during a step); ReduceLROnPlateau rejects a NaN metric (torch counts it as a bad epoch);
* a call that raises changes nothing, where torch may already have changed something: ``last_epoch`` (OneCycleLR
  stepped past ``total_steps``), the rates (CyclicLR) or OneCycleLR's keys in the groups (both on an optimizer
  without momentum).
"""

from __future__ import annotations

import copy
import inspect
import math
import types
from bisect import bisect_right
from collections import Counter
from contextlib import contextmanager

import numpy as np

from ._base import check_int, check_number, describe, number_error
from .schedules import (
    Schedule,
    _anneal,
    _check_cyclic,
    _check_one_cycle,
    _choice,
    _cosine_between,
    _cyclic_position,
    _cyclic_scale,
    _int,
    _lr,
    _milestones,
    _one_cycle_locate,
    _real,
    constant_schedule,
    cosine_restarts_schedule,
    cosine_schedule,
    cyclic_schedule,
    exponential_schedule,
    join_schedules,
    linear_schedule,
    multistep_schedule,
    one_cycle_momentum_schedule,
    one_cycle_schedule,
    polynomial_schedule,
    scale_schedule,
    step_schedule,
    wsd_schedule,
)

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "CyclicLR",
    "SequentialLR",
    "ReduceLROnPlateau",
    "WSD",
]


# ------------------------------------------------------------------------------------------------------------
# Helpers


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def _as_lr(value):
    """A computed rate as the groups hold it: a Python float for a scalar, an array for a sweep."""
    if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
        return float(value)
    return value


def _param_groups(optimizer) -> list[dict]:
    groups = getattr(optimizer, "param_groups", None)
    if (not isinstance(groups, list) or not groups
            or not all(isinstance(g, dict) and "lr" in g for g in groups)):
        raise TypeError(f"optimizer must be an optimizer whose param_groups is a list of dicts with 'lr', "
                        f"got {type(optimizer).__name__}")
    return groups


def _per_group(name: str, value, groups, check):
    """One checked value per group: a list/tuple must have one entry per group; anything else is shared."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"{name} must have one value per param group ({len(groups)}), "
                             f"got {len(value)} values: {value!r}")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    value = check(name, value)
    return [_copy(value) for _ in groups]


def _momentum(name, value):
    return _real(name, value, 0.0, 1.0)


def _flag(name, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _saved_callable(fn):
    """torch's rule for callables in a state dict: a plain function is not saved, a callable object's is."""
    return None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()


# ------------------------------------------------------------------------------------------------------------
# The base class: counting, initial_lr, per-group iteration, momentum cycling, state_dict, atomicity


class LRScheduler:
    """Shared bookkeeping of every scheduler; a subclass is its arguments and its formula.

    A subclass sets ``_chainable`` and writes ``_chain(k, lr, base_lr, initial)`` (the recursive update of the
    current rate), or overrides ``_lr(k, i)`` (the absolute rate of group ``i`` at step ``k``). ``_schedule``
    returns the pure closed form for one base rate (:meth:`closed_form`).
    """

    _chainable = False       # True: step() updates the current group lr (torch's recursive form)
    _callables: tuple = ()   # attributes holding user callables, saved in state_dict as torch does

    def __init__(self, optimizer, last_epoch=-1):
        groups = _param_groups(optimizer)
        last_epoch = _int("last_epoch", last_epoch, -1)
        if last_epoch >= 0:
            for i, group in enumerate(groups):
                missing = [key for key in self._resume_keys() if key not in group]
                if missing:
                    raise ValueError(f"last_epoch={last_epoch} resumes a run, but param_groups[{i}] has no "
                                     f"{', '.join(map(repr, missing))}: build the scheduler with "
                                     f"last_epoch=-1 and load its state_dict instead")
        with self._unchanged_on_error(groups):
            if last_epoch == -1:
                self._prepare_groups(groups)
                for group in groups:
                    group.setdefault("initial_lr", _copy(group["lr"]))
            self.optimizer = optimizer
            self.base_lrs = [_copy(group["initial_lr"]) for group in groups]
            self.last_epoch = last_epoch
            self._advance(initial=True)

    # -- hooks -----------------------------------------------------------------------------------------------

    def _resume_keys(self) -> tuple:
        return ("initial_lr",)

    def _prepare_groups(self, groups):
        """Write into the groups before ``initial_lr`` is set (OneCycleLR, CyclicLR)."""

    def _chain(self, k, lr, base_lr, initial):
        raise NotImplementedError

    def _schedule(self, base_lr) -> Schedule:
        raise NotImplementedError(f"{type(self).__name__} has no closed form")

    def _lr(self, k, i):
        return self._schedule(self.base_lrs[i])(k)

    def _updates(self, k, initial, restart):
        """The new values of each group at step k: a list of dicts (``{"lr": ...}``, maybe momentum)."""
        groups = self.optimizer.param_groups
        if self._chainable and not restart:
            lrs = [self._chain(k, g["lr"], b, initial) for g, b in zip(groups, self.base_lrs)]
        else:
            lrs = [self._lr(k, i) for i in range(len(groups))]
        return [{"lr": _as_lr(lr)} for lr in lrs]

    # -- counting --------------------------------------------------------------------------------------------

    def step(self):
        """Advance one step: call it after ``optimizer.step()``. Writes lr(last_epoch + 1) into the groups."""
        self._check_group_count()
        with self._unchanged_on_error(self.optimizer.param_groups):
            self._advance()

    def _advance(self, initial=False):
        k = self.last_epoch + 1
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing rate is refused by _write, by name
            updates = self._updates(k, initial=initial, restart=False)
        self.last_epoch = k
        self._write(updates)

    def _restart(self):
        """Start again at this scheduler's own step 0 (SequentialLR, at a milestone): the closed form at 0."""
        with np.errstate(over="ignore", invalid="ignore"):
            updates = self._updates(0, initial=False, restart=True)
        self.last_epoch = 0
        self._write(updates)

    def _check_group_count(self):
        groups = self.optimizer.param_groups
        if not isinstance(groups, list) or len(groups) != len(self._last_lr):
            n = len(groups) if isinstance(groups, list) else type(groups).__name__
            raise ValueError(f"{type(self).__name__} was built for {len(self._last_lr)} param groups, the optimizer "
                             f"now has {n}: build the scheduler after the last add_param_group")

    def _write(self, updates):
        for i, update in enumerate(updates):
            lr = update["lr"]
            # (finite only: a rate below zero is torch's too, in some one-cycle settings; the optimizer names it)
            if number_error("lr", lr) is not None:
                arguments = [n for n in list(inspect.signature(type(self).__init__).parameters)[2:]
                             if n != "last_epoch"]
                raise ValueError(f"{type(self).__name__} would set param_groups[{i}]['lr'] to {describe(lr)} at "
                                 f"step {self.last_epoch}: not a finite number; check its arguments "
                                 f"({', '.join(arguments)}) and the group's initial_lr")
        for group, update in zip(self.optimizer.param_groups, updates, strict=True):
            group.update(update)
        self._last_lr = [_copy(group["lr"]) for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        """The rates the scheduler last wrote, one per group (copies)."""
        return [_copy(lr) for lr in self._last_lr]

    def closed_form(self) -> list[Schedule]:
        """The pure schedule of each group, computed from its base rate (see :mod:`optimlab.schedules`).

        It is what this scheduler produces while nothing else changes the rates (to rounding, for the
        chainable ones); ``closed_form()[i](np.arange(n))`` plots group i's first n rates.
        """
        return [self._schedule(base_lr) for base_lr in self.base_lrs]

    # -- momentum cycling (OneCycleLR, CyclicLR) -------------------------------------------------------------

    def _check_momentum(self, optimizer, groups):
        """Which key cycling uses: Adam-family ``betas[0]`` if the groups have betas, else ``momentum``."""
        if all("betas" in g for g in groups):
            return True
        if all("momentum" in g for g in groups):
            return False
        raise ValueError(f"cycle_momentum=True needs an optimizer with 'momentum' (SGD, RMSprop) or 'betas' "
                         f"(Adam family) in its param groups; {type(optimizer).__name__} has neither "
                         f"(pass cycle_momentum=False)")

    def _momentum_update(self, group, value) -> dict:
        value = _as_lr(value)
        if self.use_beta1:
            if "betas" not in group:
                raise ValueError(f"{type(self).__name__} cycles betas[0] (use_beta1), and a param group has no "
                                 f"'betas': was it deleted, or is use_beta1 loaded for an optimizer without them?")
            return {"betas": (value, *tuple(group["betas"])[1:])}
        return {"momentum": value}

    # -- atomicity -------------------------------------------------------------------------------------------

    def _schedulers_within(self) -> list:
        return [self]

    @contextmanager
    def _unchanged_on_error(self, groups):
        """Restore the scheduler(s) and the groups if the block raises (values are replaced, not mutated)."""
        saved = [(s, dict(s.__dict__)) for s in self._schedulers_within()]
        saved_groups = [(g, dict(g)) for g in groups] if isinstance(groups, list) else []
        try:
            yield
        except BaseException as error:
            for s, state in saved:
                s.__dict__.clear()
                s.__dict__.update(state)
            for g, state in saved_groups:
                g.clear()
                g.update(state)
            if isinstance(error, (LookupError, AttributeError)):
                # the optimizer's groups were changed by hand since (a key deleted, a group added or removed)
                raise ValueError(f"{type(self).__name__}: the optimizer's param_groups no longer fit this "
                                 f"scheduler ({type(error).__name__}: {error}); it was built for "
                                 f"{len(getattr(self, '_last_lr', []))} groups with 'lr'"
                                 f"{' and momentum' if getattr(self, 'cycle_momentum', False) else ''}") from None
            raise

    # -- state -----------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything but the optimizer (copies). User callables: plain functions are saved as None, callable
        objects (e.g. a :class:`~optimlab.schedules.Schedule`) by their state, as torch does."""
        state = {}
        for key, value in self.__dict__.items():
            if key == "optimizer":
                continue
            if key in self._callables:
                state[key] = ([_saved_callable(f) for f in value] if isinstance(value, list)
                              else None if value is None else _saved_callable(value))
            else:
                state[key] = copy.deepcopy(value)
        return state

    def load_state_dict(self, state_dict: dict):
        """Restore a state from :meth:`state_dict` (of the same kind of scheduler). The optimizer's rates are
        not touched: load the optimizer's own state dict for those."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        expected = set(self.state_dict())
        if set(state_dict) != expected:
            missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
            raise ValueError(f"state_dict does not belong to a {type(self).__name__}: missing keys "
                             f"{missing}, unexpected keys {unexpected}")
        state_dict = self._check_state(state_dict)
        for key, value in state_dict.items():
            if key in self._callables:
                current = getattr(self, key)
                if isinstance(current, list):
                    for fn, saved in zip(current, value):
                        if saved is not None:
                            fn.__dict__.update(saved)
                elif value is not None and current is not None:
                    current.__dict__.update(value)
            else:
                setattr(self, key, copy.deepcopy(value))

    def _check_state(self, state_dict):
        """Check a state dict before anything is loaded: each field of the kind this scheduler holds (numbers
        that fit a float64, one entry per group, ...), then a trial copy that runs with it (see _trial).
        Returns the state dict with its numbers as this scheduler holds them (see _as_held)."""
        current = self.state_dict()
        for key, value in state_dict.items():
            if key in self._callables:
                # a saved callable is None (a plain function) or the __dict__ of a callable object, as in torch
                many = isinstance(current[key], list)
                saved = value if many else [value]
                if not isinstance(saved, list) or (many and len(saved) != len(current[key])) \
                        or not all(v is None or isinstance(v, dict) for v in saved):
                    raise TypeError(f"state_dict[{key!r}] must be {'a list of ' if many else ''}None or a dict of "
                                    f"a callable's attributes{f' ({len(current[key])})' if many else ''}, got "
                                    f"{describe(value)}")
            elif key != "_schedulers":
                _check_like(f"state_dict[{key!r}]", value, current[key])
        check_int("state_dict['last_epoch']", state_dict["last_epoch"], -1)
        state_dict = {k: v if k in self._callables or k == "_schedulers" else _as_held(v, current[k])
                      for k, v in state_dict.items()}
        trial = copy.copy(self)
        trial.__dict__ = {**self.__dict__, **{k: copy.deepcopy(v) for k, v in state_dict.items()
                                              if k not in self._callables and k != "_schedulers"}}
        try:
            trial._trial()
        except (TypeError, ValueError, ArithmeticError) as e:
            raise ValueError(f"state_dict holds values this {type(self).__name__} cannot run with: {e}") from None
        return state_dict

    def _trial(self):
        """Run the checks of construction on the fields (the constructor itself, on a stand-in optimizer, and
        the closed form's factories), then compute the next rates (finite; momenta in [0, 1])."""
        # the constructor, on a stand-in optimizer, when every argument it needs is a field of the same name
        args = {}
        for name, parameter in list(inspect.signature(type(self).__init__).parameters.items())[2:]:
            if name in self.__dict__:
                args[name] = self.__dict__[name]
            elif parameter.default is inspect.Parameter.empty:
                break
        else:
            type(self)(_StandIn(self.optimizer), **{k: v for k, v in args.items() if k != "last_epoch"})
        try:
            self.closed_form()
        except NotImplementedError:
            pass
        k = self.last_epoch + 1
        for i, update in enumerate(self._updates(k, initial=False, restart=k == 0)):
            lr = update["lr"]
            check_number(f"the rate of group {i} at step {k}", lr)
            for key in ("momentum", "betas"):
                if key in update:
                    m = update[key][0] if key == "betas" else update[key]
                    if number_error(key, m) or not np.all((np.asarray(m) >= 0) & (np.asarray(m) <= 1)):
                        raise ValueError(f"the {key} of group {i} at step {k} would be {describe(m)}, "
                                         f"not in [0, 1]")

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class _StandIn:
    """An optimizer's copy for trying a scheduler's constructor on: its groups are copies of the real ones."""

    def __init__(self, optimizer):
        self.param_groups = [{k: _copy(v) for k, v in g.items() if k != "initial_lr"}
                             for g in optimizer.param_groups]


def _as_held(value, reference):
    """A checked loaded value as the scheduler holds its own: a numpy scalar where it holds a Python number
    becomes that number (a loaded float16 eta_min would otherwise make every later rate a float16)."""
    if isinstance(reference, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(value)(_as_held(v, r) for v, r in zip(value, reference))
    if isinstance(reference, float) and isinstance(value, (int, np.integer, np.floating)) \
            and not isinstance(value, bool):
        return float(value)
    if isinstance(reference, int) and not isinstance(reference, bool) and isinstance(value, np.integer):
        return int(value)
    return value


def _check_like(name, value, reference):
    """``value`` is of the kind ``reference`` is (a loaded field against this scheduler's own): a number that
    fits a float64 (not NaN) for a number, an int for an int count, an array for an array, a list of the same
    length, a string, a bool, None."""
    if reference is None or isinstance(reference, (str, bool, np.bool_)):
        expected = type(None) if reference is None else (str if isinstance(reference, str) else (bool, np.bool_))
        if not isinstance(value, expected):
            raise TypeError(f"{name} must be {_kind(reference)}, got {describe(value)}")
    elif isinstance(reference, (int, float, np.integer, np.floating, np.ndarray)):
        is_array = isinstance(reference, np.ndarray) and reference.ndim > 0
        error = number_error(name, value, array=is_array, finite=False, numpy_ints=True)
        if error is None and is_array != (isinstance(value, np.ndarray) and value.ndim > 0):
            error = TypeError(f"{name} must be {_kind(reference)}, got {describe(value)}")
        if error is None and np.any(np.isnan(np.asarray(value, dtype=np.float64))):
            error = ValueError(f"{name} must not be NaN, got {describe(value)}")
        if error is None and is_array and np.broadcast_shapes(value.shape, reference.shape) != reference.shape:
            error = ValueError(f"{name} must have shape {reference.shape}, got {value.shape}")
        if error is not None:
            raise error
    elif isinstance(reference, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(reference):
            raise ValueError(f"{name} must be a list of {len(reference)} entries (one per group or item), got "
                             f"{describe(value)}")
        for i, (v, r) in enumerate(zip(value, reference)):
            _check_like(f"{name}[{i}]", v, r)
    elif isinstance(reference, dict):
        if not isinstance(value, dict) or set(value) != set(reference):
            raise ValueError(f"{name} must be a dict with keys {sorted(reference)}, got {describe(value)}")
        for key in reference:
            _check_like(f"{name}[{key!r}]", value[key], reference[key])


def _kind(reference) -> str:
    if reference is None:
        return "None"
    if isinstance(reference, np.ndarray):
        return "a numpy array of numbers"
    return {str: "a string", bool: "True or False", np.bool_: "True or False"}.get(type(reference), "a number")


# ------------------------------------------------------------------------------------------------------------
# Absolute schedulers


class LambdaLR(LRScheduler):
    r"""The base rate times a function of the step: :math:`\eta_k = B\,\lambda(k)`.

    λ(0) is used by the *first* update (a warm-up λ(k) = k/W gives a zero rate on step 1). Any schedule of
    :mod:`optimlab.schedules` built with ``lr=1.0`` is a multiplier for LambdaLR.

    Args:
      optimizer: the optimizer.
      lr_lambda: a callable of the step, or a list with one per group.
      last_epoch: −1 to start; k >= 0 to resume (see the module docs).
    """

    _callables = ("lr_lambdas",)

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        groups = _param_groups(optimizer)

        def check(name, fn):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, got {fn!r}")
            return fn

        self.lr_lambdas = _per_group("lr_lambda", lr_lambda, groups, check)
        super().__init__(optimizer, last_epoch)

    def _lr(self, k, i):
        return self.base_lrs[i] * self.lr_lambdas[i](k)

    def closed_form(self):
        return [scale_schedule(fn if isinstance(fn, Schedule) else Schedule("lr_lambda", _vectorized, fn=fn),
                               base_lr) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


def _vectorized(k, fn):
    return np.vectorize(lambda x: fn(int(x) if float(x).is_integer() else x), otypes=[np.float64])(k)


class WSD(LambdaLR):
    r"""Warmup-stable-decay: LambdaLR with the multiplier :func:`optimlab.schedules.wsd_schedule` (``lr=1``).

    :math:`\eta_k = B f_k` with f rising linearly from 0 over ``warmup_steps``, 1 for ``stable_steps``, then
    decaying over ``decay_steps`` to ``min_lr_ratio`` (``"linear"``, ``"cosine"`` or ``"1-sqrt"``) and staying
    there. torch has no WSD; this is exactly ``torch.optim.lr_scheduler.LambdaLR`` with the same multiplier.

    Args:
      optimizer: the optimizer.
      warmup_steps: W >= 0.  stable_steps: S >= 0.  decay_steps: D >= 1.
      decay_type: ``"linear"``, ``"cosine"`` (default) or ``"1-sqrt"``.
      min_lr_ratio: the floor, as a fraction of each group's base rate, in [0, 1].
      last_epoch: −1 to start; k >= 0 to resume.
    """

    def __init__(self, optimizer, warmup_steps, stable_steps, decay_steps, decay_type="cosine",
                 min_lr_ratio=0.0, last_epoch=-1):
        multiplier = wsd_schedule(1.0, warmup_steps, stable_steps, decay_steps, decay_type, min_lr_ratio)
        super().__init__(optimizer, multiplier, last_epoch)

    @property
    def multiplier(self) -> Schedule:
        """The WSD multiplier f (a :class:`~optimlab.schedules.Schedule` with ``lr=1``)."""
        return self.lr_lambdas[0]

    def _schedule(self, base_lr):
        p = self.multiplier.params
        return wsd_schedule(base_lr, p["warmup_steps"], p["stable_steps"], p["decay_steps"], p["decay_type"],
                            p["min_lr_ratio"])

    def closed_form(self):
        return [self._schedule(b) for b in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR: cosine annealing restarted every T_i steps, T_i = T_0·T_mult^i (Loshchilov & Hutter 2016).

    .. math:: \eta_k = \eta_{\min} + (B - \eta_{\min})\,\frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    Each ``step()`` does ``T_cur += 1`` and, when ``T_cur >= T_i``, ``T_cur = T_cur mod T_i; T_i *= T_mult``:
    the rate jumps back to B exactly where the cosine would reach η_min, so η_min itself is never used. The
    closed form is :func:`optimlab.schedules.cosine_restarts_schedule` (which, unlike torch's ``step(epoch)``,
    does not land one cycle short at exact boundaries).

    Args:
      optimizer: the optimizer.
      T_0: the first cycle's length, a positive integer.
      T_mult: an integer >= 1, the growth of cycle lengths.
      eta_min: the floor η_min >= 0.
      last_epoch: −1 to start; k >= 0 to resume.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        self.T_0 = _int("T_0", T_0, 1)
        self.T_i = self.T_0
        self.T_mult = _int("T_mult", T_mult, 1)
        self.eta_min = _lr("eta_min", eta_min)
        self.T_cur = _int("last_epoch", last_epoch, -1)
        super().__init__(optimizer, last_epoch)

    def _updates(self, k, initial, restart):
        if restart or k == 0:
            self.T_cur, self.T_i = 0, self.T_0
        else:
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i  # (a resumed T_cur = last_epoch can exceed T_i: torch takes it modulo)
                self.T_i *= self.T_mult
        return [{"lr": _as_lr(_cosine_between(b, self.eta_min, self.T_cur, self.T_i))} for b in self.base_lrs]

    def _trial(self):
        # the counters of the current cycle (loaded): integers, as step() keeps them
        check_int("T_cur", self.T_cur, 0)
        check_int("T_i", self.T_i, 1)
        super()._trial()

    def _schedule(self, base_lr):
        return cosine_restarts_schedule(base_lr, self.T_0, self.T_mult, self.eta_min)


class OneCycleLR(LRScheduler):
    r"""The one-cycle policy (Smith 2018), exactly as torch's OneCycleLR, rate and momentum.

    The rate goes from ``initial_lr = max_lr/div_factor`` up to ``max_lr`` (ending at step pct_start·T − 1),
    then down to ``min_lr = initial_lr/final_div_factor`` at step T − 1; ``three_phase`` goes back to
    ``initial_lr`` at step 2·pct_start·T − 2 first. Within a phase from a to b, with
    pct = (k − start)/(end − start), the value is b + (a − b)(1 + cos π·pct)/2 (``"cos"``, applied to the
    warm-up too) or a + (b − a)·pct (``"linear"``). Momentum (or β₁) moves inversely: max → base → max.
    Closed forms:
    :func:`optimlab.schedules.one_cycle_schedule` and :func:`~optimlab.schedules.one_cycle_momentum_schedule`.

    Side effects, as in torch (the course shows them):

    * The constructor **overwrites** each group's ``initial_lr`` with max_lr/div_factor (the optimizer's own
      lr is ignored) and adds ``max_lr`` and ``min_lr`` to the groups; every step reads these three from the
      groups, so editing them mid-run changes the curve.
    * With ``cycle_momentum`` (the default) it sets ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam family)
      to max_momentum and adds ``max_momentum``/``base_momentum`` to the groups: an SGD built with momentum=0
      silently becomes SGD with momentum. An optimizer with neither key raises ValueError (nothing changed).
      Unlike torch, the optimizer checks the β₁ written at its next step: ``max_momentum=1`` on an Adam-family
      optimizer makes that step raise ValueError (torch checks betas only in the optimizer's constructor).
    * ``step()`` may be called T times (``last_epoch`` reaches T: the value after the last update,
      extrapolated past the minimum, e.g. 0.188·max_lr for T = 5); the next call raises ValueError (here
      without changing anything; torch has already advanced ``last_epoch`` when it raises).
    * A phase of zero length (pct_start·T = 1, or 2·pct_start·T − 2 = T − 1 with three phases) makes torch
      divide by zero during a step; here the constructor rejects it. Other odd settings (pct_start·T < 1, or
      pct_start > 0.5 with three phases, where phases overlap) are computed exactly as torch computes them.

    Args:
      optimizer: the optimizer.
      max_lr: the peak rate, or a list with one per group.
      total_steps: T, a positive integer; or give ``epochs`` and ``steps_per_epoch`` (T = their product).
      pct_start: the fraction of the cycle spent rising, in (0, 1).
      anneal_strategy: ``"cos"`` or ``"linear"`` (here also a tuple with one per phase, an extension).
      cycle_momentum: cycle momentum / β₁ inversely to the rate.
      base_momentum, max_momentum: the momentum at the peak rate and at the ends, in [0, 1] (or per group).
        (torch accepts any value; here outside [0, 1] is an error.)
      div_factor: initial_lr = max_lr/div_factor (> 0).
      final_div_factor: min_lr = initial_lr/final_div_factor (> 0).
      three_phase: Smith's three phases.
      last_epoch: −1 to start; k >= 0 to resume (the groups must hold the keys listed above: ValueError if
        not, where torch raises KeyError).
    """

    _group_keys = {"initial": "initial_lr", "max": "max_lr", "min": "min_lr",
                   "max_m": "max_momentum", "base_m": "base_momentum"}

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        groups = _param_groups(optimizer)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError(f"OneCycleLR needs total_steps, or epochs and steps_per_epoch; got "
                                 f"total_steps=None, epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}")
            total_steps = _int("epochs", epochs, 1) * _int("steps_per_epoch", steps_per_epoch, 1)
        self.total_steps, self.pct_start, self.anneal_strategy, self.phases = _check_one_cycle(
            total_steps, pct_start, anneal_strategy, three_phase)
        self.three_phase = bool(three_phase)
        self.max_lrs = _per_group("max_lr", max_lr, groups, _lr)
        self.div_factor = _real("div_factor", div_factor, low=0.0, low_open=True)
        self.final_div_factor = _real("final_div_factor", final_div_factor, low=0.0, low_open=True)
        self.cycle_momentum = _flag("cycle_momentum", cycle_momentum)
        if self.cycle_momentum:
            self.use_beta1 = self._check_momentum(optimizer, groups)
            self.base_momentums = _per_group("base_momentum", base_momentum, groups, _momentum)
            self.max_momentums = _per_group("max_momentum", max_momentum, groups, _momentum)
        super().__init__(optimizer, last_epoch)

    def _resume_keys(self):
        keys = ("initial_lr", "max_lr", "min_lr")
        return keys + ("max_momentum", "base_momentum") if self.cycle_momentum else keys

    def _prepare_groups(self, groups):
        for i, group in enumerate(groups):
            group["initial_lr"] = self.max_lrs[i] / self.div_factor
            group["max_lr"] = _copy(self.max_lrs[i])
            group["min_lr"] = group["initial_lr"] / self.final_div_factor
            if self.cycle_momentum:
                group.update(self._momentum_update(group, self.max_momentums[i]))
                group["max_momentum"] = _copy(self.max_momentums[i])
                group["base_momentum"] = _copy(self.base_momentums[i])

    def _updates(self, k, initial, restart):
        if k > self.total_steps:
            raise ValueError(f"OneCycleLR was stepped past total_steps={self.total_steps}: step() can be "
                             f"called {self.total_steps} times, this would make last_epoch={k}")
        idx, pct = _one_cycle_locate(k, self.phases)
        idx, pct = int(idx), float(pct)
        _, lr_from, lr_to, m_from, m_to = self.phases[idx]
        strategy, keys = self.anneal_strategy[idx], self._group_keys
        updates = []
        for group in self.optimizer.param_groups:
            update = {"lr": _as_lr(_anneal(strategy, group[keys[lr_from]], group[keys[lr_to]], pct))}
            if self.cycle_momentum:
                value = _anneal(strategy, group[keys[m_from]], group[keys[m_to]], pct)
                update.update(self._momentum_update(group, value))
            updates.append(update)
        return updates

    def closed_form(self):
        return [one_cycle_schedule(m, self.total_steps, self.pct_start, self.anneal_strategy, self.div_factor,
                                   self.final_div_factor, self.three_phase) for m in self.max_lrs]

    def momentum_closed_form(self) -> list[Schedule]:
        """The pure momentum (β₁) schedule of each group."""
        return [one_cycle_momentum_schedule(self.total_steps, self.pct_start, self.anneal_strategy,
                                            self.three_phase, b, m)
                for b, m in zip(self.base_momentums, self.max_momentums)]


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates (Smith 2017), exactly as torch's CyclicLR, rate and momentum.

    With u, d the half-cycle lengths, cycle c = ⌊1 + k/(u + d)⌋, x = 1 + k/(u + d) − c, r = u/(u + d) and
    height s = x/r (x <= r) or (x − 1)/(r − 1):

    .. math::
        \eta_k = \eta_{base} + (\eta_{max} - \eta_{base})\,s\,f, \qquad
        m_k = m_{max} - (m_{max} - m_{base})\,s\,f

    f = 1 (triangular), 1/2^{c−1} (triangular2), γ^k (exp_range), or ``scale_fn``. Closed form:
    :func:`optimlab.schedules.cyclic_schedule`.

    Side effects and quirks, as in torch:

    * The constructor sets each group's lr to base_lr, and the rates are computed from ``base_lr``, not from
      ``initial_lr``. But the constructor's own first step uses ``initial_lr``: if an earlier scheduler had
      set it, lr(0) is that earlier base rate, not base_lr (lr(1) onwards is right).
    * ``cycle_momentum`` (default True) sets ``momentum``/``betas[0]`` to max_momentum at once and adds
      ``max_momentum``/``base_momentum`` to the groups; SGD with momentum=0 silently gets momentum. An
      optimizer with neither key (Adagrad) raises ValueError; torch has already set the groups' lr when it
      raises, here nothing changes. Unlike torch, the optimizer checks the β₁ written at its next step:
      ``max_momentum=1`` on an Adam-family optimizer makes that step raise ValueError.

    Args:
      optimizer: the optimizer.
      base_lr, max_lr: the lower and upper rates (or one per group).
      step_size_up: u > 0.  step_size_down: d > 0 (default u).
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
      gamma: γ > 0 for exp_range.
      scale_fn: a custom f of one number (then ``scale_mode`` says whether it gets c or k).
      scale_mode: ``"cycle"`` or ``"iterations"``.
      cycle_momentum: cycle momentum / β₁ inversely to the rate.
      base_momentum, max_momentum: in [0, 1] (or per group). (torch accepts any value; here outside [0, 1] is
        an error.)
      last_epoch: −1 to start; k >= 0 to resume.
    """

    _callables = ("scale_fn",)

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
                 gamma=1.0, scale_fn=None, scale_mode="cycle", cycle_momentum=True, base_momentum=0.8,
                 max_momentum=0.9, last_epoch=-1):
        groups = _param_groups(optimizer)
        base_lrs = _per_group("base_lr", base_lr, groups, _lr)
        self.max_lrs = _per_group("max_lr", max_lr, groups, _lr)
        (self.step_size_up, self.step_size_down, self.mode, self.gamma, self.scale_fn,
         self.scale_mode) = _check_cyclic(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
        self.cycle_momentum = _flag("cycle_momentum", cycle_momentum)
        if self.cycle_momentum:
            self.use_beta1 = self._check_momentum(optimizer, groups)
            self.base_momentums = _per_group("base_momentum", base_momentum, groups, _momentum)
            self.max_momentums = _per_group("max_momentum", max_momentum, groups, _momentum)
        # As in torch, the constructor's own step runs with base_lrs taken from initial_lr (the quirk above);
        # from then on the rates are computed from base_lr.
        self._given_base_lrs = base_lrs
        super().__init__(optimizer, last_epoch)
        self.base_lrs = self.__dict__.pop("_given_base_lrs")

    def _prepare_groups(self, groups):
        for i, group in enumerate(groups):
            group["lr"] = _copy(self._given_base_lrs[i])
            if self.cycle_momentum:
                group.update(self._momentum_update(group, self.max_momentums[i]))
                group["max_momentum"] = _copy(self.max_momentums[i])
                group["base_momentum"] = _copy(self.base_momentums[i])

    def _updates(self, k, initial, restart):
        cycle, s = _cyclic_position(k, self.step_size_up, self.step_size_down)
        cycle, s = float(cycle), float(s)
        f = _cyclic_scale(self.mode, self.gamma, self.scale_fn, self.scale_mode, cycle, k)
        updates = []
        for i, group in enumerate(self.optimizer.param_groups):
            base, top = self.base_lrs[i], self.max_lrs[i]
            update = {"lr": _as_lr(base + (top - base) * s * f)}
            if self.cycle_momentum:
                m_base, m_max = self.base_momentums[i], self.max_momentums[i]
                update.update(self._momentum_update(group, m_max - (m_max - m_base) * s * f))
            updates.append(update)
        return updates

    def closed_form(self):
        return [self._cyclic(b, m) for b, m in zip(self.base_lrs, self.max_lrs)]

    def _cyclic(self, low, high):
        return cyclic_schedule(low, high, self.step_size_up, self.step_size_down, self.mode, self.gamma,
                               self.scale_fn, self.scale_mode)

    def momentum_closed_form(self) -> list[Schedule]:
        """The pure momentum (β₁) schedule of each group: the cyclic formula from max to base momentum."""
        return [self._cyclic(m, b) for b, m in zip(self.base_momentums, self.max_momentums)]


# ------------------------------------------------------------------------------------------------------------
# Chainable (recursive) schedulers


class StepLR(LRScheduler):
    r"""Step decay: multiply the current rate by γ every ``step_size`` steps.

    Recursive (torch): :math:`\eta_k = \gamma\,\eta_{k-1}` when k > 0 and k mod s = 0, else unchanged.
    Closed form :math:`B\,\gamma^{\lfloor k/s \rfloor}` (:func:`optimlab.schedules.step_schedule`).

    Args:
      optimizer: the optimizer.
      step_size: s, a positive integer.
      gamma: γ > 0.
      last_epoch: −1 to start; k >= 0 to resume (may apply one more decay, as in torch).
    """

    _chainable = True

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = _int("step_size", step_size, 1)
        self.gamma = _real("gamma", gamma, low=0.0, low_open=True)
        super().__init__(optimizer, last_epoch)

    def _chain(self, k, lr, base_lr, initial):
        return lr if k == 0 or k % self.step_size else lr * self.gamma

    def _schedule(self, base_lr):
        return step_schedule(base_lr, self.step_size, self.gamma)


class MultiStepLR(LRScheduler):
    r"""Multiply the current rate by γ at each milestone (γ^n for a milestone given n times).

    Recursive (torch): :math:`\eta_k = \gamma^{n_k}\eta_{k-1}`, n_k = how often k is a milestone.
    Closed form :math:`B\,\gamma^{\#\{m \le k\}}` (:func:`optimlab.schedules.multistep_schedule`).

    Args:
      optimizer: the optimizer.
      milestones: sorted non-negative integers (torch accepts any order; here unsorted is an error).
      gamma: γ > 0.
      last_epoch: −1 to start; k >= 0 to resume.
    """

    _chainable = True

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = Counter(_milestones("milestones", milestones, strict=False, minimum=0))
        self.gamma = _real("gamma", gamma, low=0.0, low_open=True)
        super().__init__(optimizer, last_epoch)

    def _chain(self, k, lr, base_lr, initial):
        return lr * self.gamma ** self.milestones[k] if k in self.milestones else lr

    def _schedule(self, base_lr):
        return multistep_schedule(base_lr, sorted(self.milestones.elements()), self.gamma)


class ConstantLR(LRScheduler):
    r"""Lower the rate by a constant factor for the first ``total_iters`` steps.

    Recursive (torch): multiply by φ at k = 0 and by 1/φ at k = T (which can leave B off by one ulp).
    Closed form :math:`B\varphi` for k < T, then B (:func:`optimlab.schedules.constant_schedule`).

    Args:
      optimizer: the optimizer.
      factor: φ ∈ (0, 1]. (torch accepts 0, then divides by it at step T and raises ZeroDivisionError.)
      total_iters: T, a positive integer.
      last_epoch: −1 to start; k >= 0 to resume.
    """

    _chainable = True

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        self.factor = _real("factor", factor, 0.0, 1.0, low_open=True)
        self.total_iters = _int("total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def _chain(self, k, lr, base_lr, initial):
        if k == 0:
            return lr * self.factor
        return lr * (1.0 / self.factor) if k == self.total_iters else lr

    def _schedule(self, base_lr):
        return constant_schedule(base_lr, self.factor, self.total_iters)


class LinearLR(LRScheduler):
    r"""Linear change of the multiplier from ``start_factor`` to ``end_factor`` over ``total_iters`` steps.

    Recursive (torch): :math:`\eta_0 = s\,\eta`, then for 1 <= k <= T
    :math:`\eta_k = \eta_{k-1}\big(1 + \frac{e - s}{T s + (k - 1)(e - s)}\big)`.
    Closed form :math:`B\,(s + (e - s)\min(k, T)/T)` (:func:`optimlab.schedules.linear_schedule`).

    Args:
      optimizer: the optimizer.
      start_factor: s ∈ (0, 1] (0 is excluded: the recursion divides by it).
      end_factor: e ∈ [0, 1].
      total_iters: T, a positive integer.
      last_epoch: −1 to start; k >= 0 to resume.
    """

    _chainable = True

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        self.start_factor = _real("start_factor", start_factor, 0.0, 1.0, low_open=True)
        self.end_factor = _real("end_factor", end_factor, 0.0, 1.0)
        self.total_iters = _int("total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def _chain(self, k, lr, base_lr, initial):
        if k == 0:
            return lr * self.start_factor
        if initial or k > self.total_iters:
            return lr
        s, e, T = self.start_factor, self.end_factor, self.total_iters
        return lr * (1.0 + (e - s) / (T * s + (k - 1) * (e - s)))

    def _schedule(self, base_lr):
        return linear_schedule(base_lr, self.start_factor, self.end_factor, self.total_iters)


class ExponentialLR(LRScheduler):
    r"""Multiply the current rate by γ at every step: :math:`\eta_k = \gamma\,\eta_{k-1}`.

    Closed form :math:`B\gamma^k` (:func:`optimlab.schedules.exponential_schedule`). The constructor leaves
    the rate unchanged.

    Args:
      optimizer: the optimizer.
      gamma: γ > 0.
      last_epoch: −1 to start; k >= 0 to resume.
    """

    _chainable = True

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _real("gamma", gamma, low=0.0, low_open=True)
        super().__init__(optimizer, last_epoch)

    def _chain(self, k, lr, base_lr, initial):
        return lr if initial else lr * self.gamma

    def _schedule(self, base_lr):
        return exponential_schedule(base_lr, self.gamma)


class PolynomialLR(LRScheduler):
    r"""Polynomial decay to 0 at ``total_iters``, then 0.

    Recursive (torch): :math:`\eta_k = \eta_{k-1}\big(\frac{1 - k/T}{1 - (k - 1)/T}\big)^p` for 1 <= k <= T.
    Closed form :math:`B(1 - \min(k, T)/T)^p` (:func:`optimlab.schedules.polynomial_schedule`). There is no
    end rate: it reaches exactly 0 at k = T.

    Args:
      optimizer: the optimizer.
      total_iters: T, a positive integer.
      power: p >= 0.
      last_epoch: −1 to start; k >= 0 to resume.
    """

    _chainable = True

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = _int("total_iters", total_iters, 1)
        self.power = _real("power", power, low=0.0)
        super().__init__(optimizer, last_epoch)

    def _chain(self, k, lr, base_lr, initial):
        if initial or k > self.total_iters:
            return lr
        T = self.total_iters
        return lr * ((1.0 - k / T) / (1.0 - (k - 1) / T)) ** self.power

    def _schedule(self, base_lr):
        return polynomial_schedule(base_lr, self.total_iters, self.power)


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base rate to ``eta_min`` over ``T_max`` steps, recursively as in torch.

    Recursive: :math:`\eta_k = \eta_{\min} + (\eta_{k-1} - \eta_{\min})
    \frac{1 + \cos(\pi k/T)}{1 + \cos(\pi (k - 1)/T)}`; where that denominator is 0 (k = T + 1, 3T + 1, ...)
    it adds :math:`(B - \eta_{\min})(1 - \cos(\pi/T))/2` instead. Closed form
    :math:`\eta_{\min} + (B - \eta_{\min})(1 + \cos(\pi k/T))/2` (:func:`optimlab.schedules.cosine_schedule`).

    It does not stop at T_max: the rate climbs back, with period 2·T_max. Because each step rescales the
    *current* rate, an external change carries forward: halving the rate after step 1 (B = 0.1, T = 10) gives
    0.0452 at step 2 where the closed form says 0.0905.

    Args:
      optimizer: the optimizer.
      T_max: T, a positive integer.
      eta_min: η_min >= 0.
      last_epoch: −1 to start; k >= 0 to resume.
    """

    _chainable = True

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = _int("T_max", T_max, 1)
        self.eta_min = _lr("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def _chain(self, k, lr, base_lr, initial):
        T, eta_min = self.T_max, self.eta_min
        if initial:
            return lr
        if (k - 1 - T) % (2 * T) == 0:
            return lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        ratio = ((1 + math.cos(math.pi * k / T))
                 / (1 + math.cos(math.pi * (k - 1) / T)))
        return ratio * (lr - eta_min) + eta_min

    def _schedule(self, base_lr):
        return cosine_schedule(base_lr, self.T_max, self.eta_min)


# ------------------------------------------------------------------------------------------------------------
# Composition and the metric-driven scheduler


class SequentialLR(LRScheduler):
    r"""Run schedulers one after another, switching at the milestones; each restarts at its own step 0.

    .. math:: \eta_k = \text{scheduler}_i \text{ at its step } k - m_{i-1}, \quad m_{i-1} \le k < m_i

    As in torch: the constructor resets every group's lr to ``initial_lr`` (undoing the children's own
    constructor steps), moves every child's ``last_epoch`` back by one and runs the first child's step 0. At
    milestone m_i, child i restarts at its step 0 with its closed form; between milestones the active child
    steps normally (recursively, for the chainable ones). Closed form:
    :func:`optimlab.schedules.join_schedules` of the children's closed forms.

    Args:
      optimizer: the optimizer every child was built on.
      schedulers: a non-empty list of schedulers (not ReduceLROnPlateau, not another SequentialLR).
      milestones: strictly increasing positive integers, one fewer than the schedulers.
      last_epoch: −1 to start.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        groups = _param_groups(optimizer)
        if not isinstance(schedulers, (list, tuple)) or not schedulers:
            raise ValueError(f"schedulers must be a non-empty list of schedulers, got {schedulers!r}")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, (ReduceLROnPlateau, SequentialLR)):
                raise TypeError(f"schedulers[{i}] must be a scheduler other than ReduceLROnPlateau and "
                                f"SequentialLR, got {s!r}")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] ({type(s).__name__}) belongs to another optimizer")
        milestones = _milestones("milestones", milestones, strict=True, minimum=1)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones must have one entry fewer than schedulers ({len(schedulers) - 1}), "
                             f"got {milestones!r}")
        last_epoch = _int("last_epoch", last_epoch, -1)
        for i, group in enumerate(groups):
            if "initial_lr" not in group:
                raise ValueError(f"param_groups[{i}] has no 'initial_lr': build the schedulers on this "
                                 f"optimizer before the SequentialLR")
        self._schedulers = list(schedulers)
        with self._unchanged_on_error(groups):
            self._milestones = milestones
            self.optimizer = optimizer
            self.last_epoch = last_epoch + 1
            for group in groups:
                group["lr"] = _copy(group["initial_lr"])
            for s in self._schedulers:
                s.last_epoch -= 1
            first = self._schedulers[bisect_right(milestones, 0)]
            first._advance(initial=True)
            self._last_lr = first.get_last_lr()

    def _schedulers_within(self):
        return [self, *getattr(self, "_schedulers", [])]

    def step(self):
        """Advance one step; at a milestone the next scheduler starts at its own step 0."""
        self._check_group_count()
        with self._unchanged_on_error(self.optimizer.param_groups):
            self.last_epoch += 1
            idx = bisect_right(self._milestones, self.last_epoch)
            scheduler = self._schedulers[idx]
            if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
                scheduler._restart()
            else:
                scheduler._advance()
            self._last_lr = scheduler.get_last_lr()

    def _trial(self):
        milestones = _milestones("_milestones", self._milestones, strict=True, minimum=1)
        if len(milestones) != len(self._schedulers) - 1:
            raise ValueError(f"_milestones must have {len(self._schedulers) - 1} entries, got {milestones!r}")

    def closed_form(self):
        forms = [s.closed_form() for s in self._schedulers]
        return [join_schedules([f[i] for f in forms], self._milestones) for i in range(len(forms[0]))]

    def state_dict(self):
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items()
                 if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        children = state_dict.get("_schedulers")
        if not isinstance(children, list) or len(children) != len(self._schedulers):
            raise ValueError(f"state_dict['_schedulers'] must hold {len(self._schedulers)} scheduler states, "
                             f"got {children!r}")
        expected = set(self.state_dict())
        if set(state_dict) != expected:
            raise ValueError(f"state_dict does not belong to a SequentialLR: keys {sorted(state_dict)}")
        self._check_state(state_dict)
        with self._unchanged_on_error([]):
            for key, value in state_dict.items():
                if key != "_schedulers":
                    setattr(self, key, copy.deepcopy(value))
            for s, child in zip(self._schedulers, children):
                s.load_state_dict(child)


class ReduceLROnPlateau(LRScheduler):
    r"""Cut the rate by ``factor`` when a monitored metric stops improving (torch's rules exactly).

    ``step(metric)``, once per evaluation:

    1. if the metric is better than ``best``: ``best = metric``, bad epochs = 0; else bad epochs += 1;
    2. during cooldown: cooldown counter −= 1 and bad epochs = 0 (bad epochs are ignored);
    3. if bad epochs > patience: each group's rate becomes max(lr·factor, min_lr), applied only when the cut
       is larger than ``eps``; then the cooldown starts and bad epochs = 0.

    So the cut happens on the (patience + 1)-th consecutive non-improving call. "Better" means
    ``a < best·(1 − threshold)`` (min, rel), ``a < best − threshold`` (min, abs), ``a > best·(1 + threshold)``
    (max, rel), ``a > best + threshold`` (max, abs). With **negative** metrics the rel rule is inverted: with
    best = −10 and threshold 0.1 (mode min), −9.5, which is worse, counts as an improvement, as in torch.

    No initial step, no ``initial_lr``; ``last_epoch`` counts the calls. Array rates (sweeps) are cut
    elementwise with one shared metric. A NaN metric raises ValueError (torch counts it as a bad epoch).

    Args:
      optimizer: the optimizer.
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
      factor: the cut, in [0, 1).
      patience: non-improving calls tolerated, an integer >= 0.
      threshold: the improvement needed, >= 0.
      threshold_mode: ``"rel"`` or ``"abs"``.
      cooldown: calls to wait after a cut before counting again, an integer >= 0.
      min_lr: the floor, a number (or array) or a list with one per group.
      eps: cuts of at most eps are skipped, >= 0.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        groups = _param_groups(optimizer)
        self.factor = _real("factor", factor, 0.0, 1.0, high_open=True)
        if isinstance(min_lr, (list, tuple)):
            self.min_lrs = _per_group("min_lr", min_lr, groups, _lr)
            self.default_min_lr = None
        else:
            self.default_min_lr = _lr("min_lr", min_lr)
            self.min_lrs = [_copy(self.default_min_lr) for _ in groups]
        self.patience = _int("patience", patience, 0)
        self.cooldown = _int("cooldown", cooldown, 0)
        self.threshold = _real("threshold", threshold, low=0.0, array=False)
        self.eps = _real("eps", eps, low=0.0, array=False)
        self.mode = _choice("mode", mode, ("min", "max"))
        self.threshold_mode = _choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.mode_worse = math.inf if self.mode == "min" else -math.inf
        self.optimizer = optimizer
        self.last_epoch = 0
        self._last_lr = [_copy(g["lr"]) for g in groups]
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, a, best):
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if rel else a < best - self.threshold
        return a > best * (self.threshold + 1.0) if rel else a > best + self.threshold

    def step(self, metrics=None):
        """Record one value of the monitored metric (e.g. a validation loss); cut the rates if it stalls."""
        if metrics is None:
            raise TypeError("ReduceLROnPlateau.step() needs the monitored metric: step(metrics), "
                            "got metrics=None")
        if isinstance(metrics, np.ndarray) and metrics.ndim == 0:
            metrics = metrics[()]  # a loss computed by numpy
        error = number_error("metrics", metrics, array=False, finite=False, numpy_ints=True)
        if error is not None:
            raise error
        current = float(metrics)
        if math.isnan(current):
            raise ValueError(f"metrics must not be NaN, got {metrics!r}")
        with self._unchanged_on_error(self.optimizer.param_groups):
            self.last_epoch += 1
            if self._is_better(current, self.best):
                self.best = current
                self.num_bad_epochs = 0
            else:
                self.num_bad_epochs += 1
            if self.cooldown_counter > 0:
                self.cooldown_counter -= 1
                self.num_bad_epochs = 0
            if self.num_bad_epochs > self.patience:
                self._reduce_lr()
                self.cooldown_counter = self.cooldown
                self.num_bad_epochs = 0
            self._last_lr = [_copy(g["lr"]) for g in self.optimizer.param_groups]

    def closed_form(self):
        raise TypeError("ReduceLROnPlateau has no closed form: its rates depend on the metric")

    def _trial(self):
        # the constructor's checks, on the loaded values (it writes nothing into the optimizer)
        min_lr = self.min_lrs if self.default_min_lr is None else self.default_min_lr
        ReduceLROnPlateau(self.optimizer, self.mode, self.factor, self.patience, self.threshold,
                          self.threshold_mode, self.cooldown, min_lr, self.eps)
        for key in ("cooldown_counter", "num_bad_epochs", "last_epoch"):
            check_int(key, getattr(self, key), 0)
        if self.mode_worse != (math.inf if self.mode == "min" else -math.inf):
            raise ValueError(f"mode_worse must be {'inf' if self.mode == 'min' else '-inf'} for mode="
                             f"{self.mode!r}, got {self.mode_worse!r}")

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueError(f"the optimizer now has {len(groups)} param groups but min_lr was given "
                                   f"for {len(self.min_lrs)}: set min_lrs to one value per group")
            self.min_lrs = [_copy(self.default_min_lr) for _ in groups]
        for group, min_lr in zip(groups, self.min_lrs):
            old = group["lr"]
            if np.ndim(old) or np.ndim(min_lr) or np.ndim(self.factor):
                new = np.maximum(np.multiply(old, self.factor), min_lr)
                group["lr"] = np.where(old - new > self.eps, new, old)
            else:
                old = float(old)
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
