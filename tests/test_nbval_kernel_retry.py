"""The retried kernel start behind `make notebooks` (tests/nbval_kernel_retry.py)."""

import pytest

from tests import nbval_kernel_retry


def starts(outcomes, monkeypatch):
    """Each call of nbval's own start takes the next outcome: an exception is raised, else returned."""
    calls = []

    def start(*args, **kwargs):
        calls.append((args, kwargs))
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(nbval_kernel_retry, "_start_new_kernel", start)
    return calls


def test_a_silent_kernel_is_replaced_by_a_fresh_one(monkeypatch):
    silent = RuntimeError("Kernel didn't respond in 120 seconds")
    calls = starts([silent, silent, ("km", "kc")], monkeypatch)
    assert nbval_kernel_retry.start_new_kernel(startup_timeout=120, cwd="chapters") == ("km", "kc")
    assert calls == [((), {"startup_timeout": 120, "cwd": "chapters"})] * 3


def test_the_last_failure_is_raised_when_no_kernel_answers(monkeypatch):
    calls = starts([RuntimeError(f"silent {i}") for i in range(1, 4)], monkeypatch)
    with pytest.raises(RuntimeError, match="silent 3"):
        nbval_kernel_retry.start_new_kernel()
    assert len(calls) == nbval_kernel_retry.ATTEMPTS == 3


def test_nbval_starts_its_kernels_through_the_retry():
    import nbval.kernel

    assert nbval.kernel.start_new_kernel is nbval_kernel_retry.start_new_kernel


def test_a_kernel_that_answers_is_started_once(monkeypatch):
    calls = starts([("km", "kc")], monkeypatch)
    assert nbval_kernel_retry.start_new_kernel() == ("km", "kc")
    assert len(calls) == 1
