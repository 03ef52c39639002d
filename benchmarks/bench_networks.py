"""The network problems' speed: a gradient per example, a sweep of 64 networks against a loop over 64, and a run
with the sharpness along training; reports figures, asserts nothing.

    python benchmarks/bench_networks.py

1. ``loss_and_grads`` of DigitsMLP, DigitsCNN and AddingGRU on a minibatch of 32 rows, float64 and float32:
   microseconds per example.
2. 64 networks trained for 10 steps with 64 learning rates (AdamW, minibatches of 32), stacked on a leading
   run axis as ``experiments.sweep`` does it, against a loop over 64 networks: the same work, the same numbers.
   Target: the stacked runs at least 5x faster. Then one ``experiments.sweep`` end to end.
3. What a chapter on the edge of stability runs: DigitsMLP, 300 steps of full-batch gradient descent with the
   sharpness (20 power iterations) every 10 steps. Target: every experiment a chapter runs within 10 s.
"""

from __future__ import annotations

import time

import numpy as np

from optimlab import AdamW, experiments
from optimlab.problems import AddingGRU, DigitsCNN, DigitsMLP

NETWORKS = {
    "DigitsMLP(hidden=(32,))": lambda dtype: DigitsMLP(hidden=(32,), dtype=dtype),
    "DigitsCNN(channels=(8, 16))": lambda dtype: DigitsCNN(channels=(8, 16), dtype=dtype),
    "AddingGRU(T=30, hidden=16)": lambda dtype: AddingGRU(T=30, hidden=16, dtype=dtype),
}
BATCH, RUNS = 32, 64


def best_of(fn, repeat=5, number=1):
    """The fastest of ``repeat`` blocks of ``number`` calls, per call: other work only ever adds time."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def per_example():
    print(f"1. loss_and_grads on {BATCH} rows, per example")
    print(f"   {'network':30s} {'float64':>10s} {'float32':>10s}")
    for name, make in NETWORKS.items():
        row = []
        for dtype in (np.float64, np.float32):
            model = make(dtype)
            params, batch = model.init_params(0), np.arange(BATCH)
            row.append(best_of(lambda m=model, p=params, b=batch: m.loss_and_grads(p, b), number=10) / BATCH)
        print(f"   {name:30s} {row[0] * 1e6:8.1f} µs {row[1] * 1e6:8.1f} µs")


def training_steps(model, runs, steps, lr):
    """``steps`` AdamW steps on minibatches of BATCH rows: ``runs`` stacked networks (runs > 0, one learning
    rate each, as experiments.sweep sets them up) or one network (runs = 0)."""
    start = model.init_params(0)
    params = model.repeat_params(start, runs) if runs else start
    lrs = np.asarray(lr).reshape(-1)
    groups = [{"params": [p], "lr": lrs.reshape((-1,) + (1,) * len(shape)) if runs else float(lrs[0])}
              for p, shape in zip(params, model.param_shapes)]
    opt = AdamW(groups)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        opt.step(model.loss_and_grads(params, rng.choice(model.n_train, BATCH, replace=False))[1])


def sweep_against_loop(steps=10):
    print(f"\n2. {RUNS} networks x {steps} AdamW steps (minibatches of {BATCH}), one learning rate each")
    print(f"   {'network':30s} {'stacked':>10s} {'loop of 64':>12s} {'speed-up':>9s}   target ≥ 5x")
    lrs = np.geomspace(1e-4, 1e-1, RUNS)
    for name, make in NETWORKS.items():
        model = make(np.float64)
        together = best_of(lambda m=model: training_steps(m, RUNS, steps, lrs), repeat=3)
        one_by_one = best_of(lambda m=model: [training_steps(m, 0, steps, lr) for lr in lrs], repeat=3)
        ratio = one_by_one / together
        verdict = "met" if ratio >= 5 else "not met"
        print(f"   {name:30s} {together:8.3f} s {one_by_one:10.3f} s {ratio:8.1f}x   {verdict}")
    model = NETWORKS["DigitsMLP(hidden=(32,))"](np.float64)
    end_to_end = best_of(lambda: experiments.sweep(model, "AdamW", steps=100, lr=lrs), repeat=2)
    print(f"   experiments.sweep, DigitsMLP, 64 learning rates x 100 steps, with its bookkeeping and the final "
          f"test accuracy: {end_to_end:.2f} s")


def sharpness_run():
    model = DigitsMLP(hidden=(32,))
    print("\n3. DigitsMLP(hidden=(32,)), 300 steps of full-batch gradient descent (lr 0.5)")
    plain = best_of(lambda: experiments.run(model, "SGD", steps=300, lr=0.5, batch_size=None), repeat=2)
    tracked = best_of(lambda: experiments.run(model, "SGD", steps=300, lr=0.5, batch_size=None,
                                              sharpness_every=10), repeat=2)
    one = best_of(lambda: model.sharpness(model.init_params(0)), repeat=3)
    print(f"   without the sharpness: {plain:.2f} s; with it every 10 steps (31 estimates): {tracked:.2f} s "
          f"(target ≤ 10 s: {'met' if tracked <= 10 else 'not met'}); one estimate: {one * 1e3:.0f} ms")


if __name__ == "__main__":
    print(f"numpy {np.__version__}\n")
    per_example()
    sweep_against_loop()
    sharpness_run()
