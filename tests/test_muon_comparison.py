"""The muon chapter's comparison protocol (experiments.compare_muon_adamw), and the numbers that the solutions of
its two experiment exercises quote, recomputed.

The chapter's own runs print their numbers, which tests/prose_numbers/12_muon.toml ties to the prose. The runs of
the exercises ex-muon-conventions and ex-muon-grid would take the chapter past its time budget, so they are rerun
here instead, and every number their solutions quote is read from the notebook's markdown and checked against the
rerun at the precision written, with the machinery of tests/test_prose_numbers.py: a changed computation or a
changed sentence fails here.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import optimlab
from optimlab import experiments, problems
from tests.test_prose_numbers import chapter_text, check_entry

CHAPTER = Path(__file__).resolve().parent.parent / "chapters" / "12_muon.ipynb"


@pytest.fixture(scope="module")
def small():
    return problems.DigitsMLP(hidden=(8, 8), dtype=np.float32)


def test_holdout_is_a_fifth_of_the_training_rows(small):
    val, fit = experiments.holdout(small)
    assert len(val) == small.n_train // 5 and len(val) + len(fit) == small.n_train
    assert np.array_equal(np.sort(np.r_[val, fit]), np.arange(small.n_train))
    assert np.all(np.diff(val) > 0) and np.all(np.diff(fit) > 0)


def test_the_contenders_are_the_optimizers_driven_by_hand(small):
    """Run 0 is AdamW on every array; run 1 Muon on the hidden matrices (with its options; a stack of one run,
    stacked=True) and AdamW on the rest; both from the seed's start, on the seed's shuffled minibatches."""
    seed, lr, rows, hidden = 7, 0.01, np.arange(0, small.n_train, 3), [0, 2]
    got = experiments.train_muon_adamw(small, hidden, ([lr], [lr]), [seed], rows, epochs=2, batch_size=50,
                                       weight_decay=0.05, adjust_lr_fn="original")
    for contender in (0, 1):
        params = [p[None].copy() for p in small.init_params(seed)]
        rate = [np.full((1,) + (1,) * p.ndim, lr) for p in small.init_params(seed)]
        muon = hidden if contender else []
        groups = {optimlab.AdamW: [i for i in range(len(params)) if i not in muon], optimlab.Muon: muon}
        opts = [(cls, [i for i in part],
                 cls([{"params": [params[i]], "lr": rate[i]} for i in part], weight_decay=0.05,
                     **({"adjust_lr_fn": "original", "stacked": True} if cls is optimlab.Muon else {})))
                for cls, part in groups.items() if part]
        rng = np.random.default_rng(seed)
        for _ in range(2):
            order = rng.permutation(rows)
            for start in range(0, len(order) - 49, 50):
                grads = small.loss_and_grads(params, order[start:start + 50])[1]
                for _, part, opt in opts:
                    opt.step([grads[i] for i in part])
        for mine, theirs in zip(params, got):
            np.testing.assert_array_equal(mine[0], theirs[contender])


def test_compare_chooses_by_mean_validation_and_its_runs_are_independent(small):
    lrs = np.array([3e-3, 1e-2, 3e-2])
    validation, chosen, test = experiments.compare_muon_adamw(small, [0, 2], lrs, range(2), range(5, 8), 1, 64)
    assert validation.shape == (2, 2, 3) and test.shape == (2, 3)
    assert np.array_equal(chosen, validation.mean(axis=1).argmax(axis=1))
    # the test runs are rerun_muon_adamw's at the chosen rates, and a run does not depend on the others of
    # its stack: the middle seed alone gives the same networks bit for bit
    again = experiments.rerun_muon_adamw(small, [0, 2], lrs[chosen], range(5, 8), 1, 64)
    np.testing.assert_array_equal(test, again)
    alone = experiments.rerun_muon_adamw(small, [0, 2], lrs[chosen], [6], 1, 64)
    np.testing.assert_array_equal(test[:, 1:2], alone)


# The exercises' runs, checked against what their solutions say


def _mean_and_se(x):
    """As the chapter prints it."""
    return f"{x.mean():.4f} ± {x.std(ddof=1) / np.sqrt(len(x)):.4f}"


def _chapter():
    """(the chapter's markdown cells and captions, its stored outputs)."""
    return chapter_text(json.loads(CHAPTER.read_text(encoding="utf-8")))


def _solution(label, prose):
    [text] = [t for t in prose if f"```{{solution}} {label}" in t]
    return text


def _check(entries, solution, printed):
    problems_ = [f"{e['prose']!r}: {p}" for e in entries for p in check_entry(e, [solution], printed)]
    assert not problems_, "the solution and its rerun disagree:\n  " + "\n  ".join(problems_) + "\n" + printed


def test_the_solution_of_ex_muon_conventions_says_what_its_run_gives():
    prose, _ = _chapter()
    classifier = problems.DigitsMLP(hidden=(64, 64), dtype=np.float32)
    lrs = np.geomspace(1e-3, 1e-1, 7)                  # the chapter's grid and settings
    validation, chosen, test = experiments.compare_muon_adamw(
        classifier, [0, 2], lrs, seeds=range(3), test_seeds=range(3, 13), epochs=8, batch_size=64,
        adjust_lr_fn="original")
    printed = (f"Muon chose η = {lrs[chosen[1]]:.2e}, validation {validation[1, :, chosen[1]].mean():.4f}\n"
               f"paired: {_mean_and_se(test[1] - test[0])} ({test.shape[1]} seeds)\n")
    _check([
        {"prose": r"chose $\eta = 10^{-2}$, one grid point above", "output": r"Muon chose η = (\S+),"},
        {"prose": "with the same validation accuracy (0.9752)", "output": r"validation (\S+)"},
        {"prose": r"against AdamW of $+0.005 \pm 0.002$ over the 10 test seeds",
         "output": r"paired: (\S+) ± (\S+) \((\d+) seeds\)"},
    ], _solution("ex-muon-conventions", prose), printed)


def test_the_solution_of_ex_muon_grid_says_what_its_runs_give():
    prose, outputs = _chapter()
    sorter = problems.TinyTransformer(norm="pre", d_model=16, d_ff=32, length=4, dtype=np.float32)
    hidden = [i for i, name in enumerate(sorter.param_names) if name[:-1] in ("W_qkv", "W_o", "W_1", "W_2")]
    lrs = np.geomspace(1e-3, 1e-1, 5)
    # One run with 30 test seeds, 3 to 32: its first 10 are the runs of test_seeds=range(3, 13), bit for bit
    # (a run does not depend on the others of its stack, tested above), and its 30 the solution's rerun.
    validation, chosen, test = experiments.compare_muon_adamw(
        sorter, hidden, lrs, seeds=range(3), test_seeds=range(3, 33), epochs=3, batch_size=16)
    ten = test[:, :10]
    printed = (f"AdamW chose η = {lrs[chosen[0]]:.2e}, Muon η = {lrs[chosen[1]]:.2e}\n"
               f"first {ten.shape[1]} seeds: {_mean_and_se(ten[1] - ten[0])}\n"
               f"all {test.shape[1]} seeds: {_mean_and_se(test[1] - test[0])}\n")
    _check([
        {"prose": r"AdamW chose $3.2\times10^{-3}$ and Muon $10^{-2}$",
         "output": r"AdamW chose η = (\S+), Muon η = (\S+)"},
        {"prose": r"(b) $+0.016 \pm 0.007$ over the 10 test seeds",
         "output": r"first (?P<c>\d+) seeds: (?P<a>\S+) ± (?P<b>\S+)"},
        {"prose": r"with 30 test seeds give $+0.014 \pm 0.004$", "output": r"all (\d+) seeds: (\S+) ± (\S+)"},
    ], _solution("ex-muon-grid", prose), printed)
    difference = ten[1] - ten[0]
    assert round(difference.mean() / (difference.std(ddof=1) / np.sqrt(10))) == 2  # "by two standard errors"
    # "Muon's test runs are exactly those of sec-muon-transformer (the same rate, the same seeds)"
    assert re.search(rf"sorting, Muon \+ AdamW: η = {lrs[chosen[1]]:.2e} .*, test {_mean_and_se(ten[1])}\n",
                     outputs), _mean_and_se(ten[1])
