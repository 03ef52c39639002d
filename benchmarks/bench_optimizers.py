"""optimlab's optimizers against torch.optim, side by side in one process; reports ratios, asserts nothing.

    python benchmarks/bench_optimizers.py            # all four workloads
    python benchmarks/bench_optimizers.py --quick    # fewer repetitions

Workloads (targets from the course's core issue):
1. one 2-D problem (Rosenbrock), Adam, a step with its analytic gradient: optimlab ≥ 5× faster than torch.optim.Adam
2. a sweep: 10,000 runs × 500 Adam steps on a 2-D ravine, a learning rate per run: optimlab ≥ 1.5× faster than
   torch.optim.Adam (as constructed by default) doing the same steps on one (10000, 2) tensor with a single
   learning rate; its opt-in foreach and fused paths are reported too
3. 200 float32 arrays of 1,000 elements made with ``flat_arrays``: optimlab ≥ 2× faster per Adam step than
   torch.optim.Adam(fused=True); the same 200 as separate arrays is reported beside it (slower than torch: one
   numpy dispatch per array and operation)
4. one float32 array of 1e7 elements: optimlab within 3× of torch.optim.Adam(fused=True) (torch's default
   threads), with no more than one parameter-sized scratch buffer allocated per step (measured by tracemalloc)

Times are the fastest of several repetitions (see ``timeit``); the machines are shared and noisy, so the ratios
measured side by side in one run are what carries over.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import optimlab

try:
    import torch
except ImportError:  # pragma: no cover - the benchmark needs the reference
    raise SystemExit("torch==2.13.0 is needed for the comparison: pip install -r requirements-dev.txt") from None


def timeit(fn, number, repeat):
    """Seconds per call of ``fn``: the fastest of ``repeat`` blocks of ``number`` calls, after a warm-up.

    The fastest block, not the median: on a shared machine other work only ever adds time, so the minimum is the
    steadiest estimate of each side's own cost, and ratios of minima repeat from run to run."""
    for _ in range(max(1, number // 10)):
        fn()
    blocks = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        blocks.append((time.perf_counter() - start) / number)
    return min(blocks)


def rosenbrock_grad_np(x, out):
    a, b = x[0], x[1]
    out[0] = -2 * (1 - a) - 400 * a * (b - a * a)
    out[1] = 200 * (b - a * a)
    return out


def bench_2d(repeat):
    x = np.array([-1.5, 2.0])
    g = np.empty(2)
    opt = optimlab.Adam([x], lr=1e-3)
    grads = [g]

    def numpy_step():
        rosenbrock_grad_np(x, g)
        opt.step(grads)

    xt = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Adam([xt], lr=1e-3)

    def torch_step():
        with torch.no_grad():
            a, b = xt[0], xt[1]
            xt.grad = torch.stack((-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)))
        topt.step()

    gt = torch.tensor([0.1, 0.2], dtype=torch.float64)
    xt2 = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    xt2.grad = gt
    topt2 = torch.optim.Adam([xt2], lr=1e-3)
    x2 = np.zeros(2)
    opt2 = optimlab.Adam([x2], lr=1e-3)
    g2 = [np.array([0.1, 0.2])]
    ours, theirs = timeit(numpy_step, 2000, repeat), timeit(torch_step, 2000, repeat)
    ours_step, theirs_step = timeit(lambda: opt2.step(g2), 2000, repeat), timeit(topt2.step, 2000, repeat)
    return [
        ("2-D Rosenbrock, Adam step + gradient", ours, theirs, "torch.optim.Adam", 5.0),
        ("2-D, Adam step alone", ours_step, theirs_step, "torch.optim.Adam", 5.0),
    ]


def bench_sweep(repeat, runs=10_000, steps=500):
    curvature = np.array([1.0, 100.0])
    curvature_rows = np.tile(curvature, (runs, 1))  # a full array: numpy loops fastest without broadcasting
    lrs = np.logspace(-4, -1, runs)[:, None]

    def numpy_sweep():
        x = np.tile([1.0, 1.0], (runs, 1))
        g = np.empty_like(x)
        opt = optimlab.Adam([x], lr=lrs)
        grads = [g]
        for _ in range(steps):
            np.multiply(x, curvature_rows, out=g)
            opt.step(grads)
        return x

    ct = torch.tensor(curvature)

    def torch_sweep(**options):
        def run():
            x = torch.ones(runs, 2, dtype=torch.float64, requires_grad=True)
            opt = torch.optim.Adam([x], lr=1e-3, **options)
            with torch.no_grad():
                for _ in range(steps):
                    x.grad = x * ct
                    opt.step()
            return x
        return run

    ours = timeit(numpy_sweep, 1, repeat)
    # The target is set against torch.optim.Adam as constructed by default (its single-tensor path on the CPU);
    # the opt-in foreach and fused paths are reported beside it.
    variants = {"default": {}, "foreach=True": {"foreach": True}, "fused=True": {"fused": True}}
    name = f"sweep {runs:,} runs x {steps} Adam steps (lr per run)"
    return [(name, ours, timeit(torch_sweep(**options), 1, repeat), f"torch.optim.Adam({variant}, one lr)",
             1.5 if variant == "default" else None) for variant, options in variants.items()]


def bench_many_small(repeat, count=200, size=1000):
    """The same 200 float32 arrays three ways, against one torch.optim.Adam(fused=True) measured once.

    Flat: parameters and gradients made with ``flat_arrays`` (one pass of the rule over one buffer). Separate
    gradients: flat parameters, gradients as 200 arrays (gathered into one buffer each step). Separate arrays:
    200 independent parameters, as a model built without ``flat_arrays`` has them (one pass per array, so numpy
    pays its dispatch 200 times per operation of the rule)."""
    start = np.random.default_rng(0).standard_normal(count * size).astype(np.float32)
    flat, params = optimlab.flat_arrays([(size,)] * count, np.float32)
    flat[:] = start
    gflat, grads = optimlab.flat_arrays([(size,)] * count, np.float32)
    gflat[:] = 0.01
    opt = optimlab.Adam(params, lr=1e-3)
    separate_grads = [g.copy() for g in grads]
    separate_params = [p.copy() for p in params]
    separate_opt = optimlab.Adam(separate_params, lr=1e-3)
    tparams = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    for p in tparams:
        p.grad = torch.full((size,), 0.01)
    fused = torch.optim.Adam(tparams, lr=1e-3, fused=True)
    theirs = timeit(fused.step, 200, repeat)
    label = f"{count} float32 arrays x {size:,}"
    reference = "torch.optim.Adam(fused=True)"
    return [
        (f"{label} (flat_arrays), Adam step", timeit(lambda: opt.step(grads), 200, repeat), theirs, reference, 2.0),
        (f"{label} (flat_arrays, separate grads), Adam step", timeit(lambda: opt.step(separate_grads), 200, repeat),
         theirs, reference, 2.0),
        (f"{label} (separate arrays, no flat_arrays), Adam step",
         timeit(lambda: separate_opt.step(separate_grads), 200, repeat), theirs, reference, None),
    ]


def bench_large(repeat, n=10_000_000):
    x = np.zeros(n, np.float32)
    g = [np.full(n, 0.01, np.float32)]
    opt = optimlab.Adam([x], lr=1e-3)
    opt.step(g)
    tracemalloc.start()
    opt.step(g)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ours = timeit(lambda: opt.step(g), 5, repeat)
    xt = torch.zeros(n, requires_grad=True)
    xt.grad = torch.full((n,), 0.01)
    topt = torch.optim.Adam([xt], lr=1e-3, fused=True)
    theirs = timeit(topt.step, 5, repeat)
    rows = [(f"one float32 array of {n:.0e}, Adam step", ours, theirs,
             f"torch.optim.Adam(fused=True, {torch.get_num_threads()} threads)", 1 / 3)]
    return rows, peak, x.nbytes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", choices=["2d", "sweep", "small", "large"], help="one workload")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7
    rows, memory = [], None
    if args.only in (None, "2d"):
        rows += bench_2d(repeat)
    if args.only in (None, "sweep"):
        rows += bench_sweep(max(3, repeat // 2))
    if args.only in (None, "small"):
        rows += bench_many_small(repeat)
    if args.only in (None, "large"):
        large, peak, nbytes = bench_large(max(3, repeat // 2))
        rows += large
        memory = (peak, nbytes)
    print(f"numpy {np.__version__}, torch {torch.__version__}, optimlab {optimlab.__version__}")
    print("| workload | optimlab | reference | speed-up | target |")
    print("|---|---|---|---|---|")
    for name, ours, theirs, reference, target in rows:
        speedup = theirs / ours
        if target is None:
            goal = "(for comparison)"
        else:
            goal = f">= {target:g}x" if target >= 1 else f"within {1 / target:g}x (>= {target:.2f}x)"
            goal += ": met" if speedup >= target else ": NOT met"
        print(f"| {name} | {_fmt(ours)} | {_fmt(theirs)} {reference} | {speedup:.2f}x | {goal} |")
    if memory:
        peak, nbytes = memory
        print(f"\nlargest allocation traced during one 1e7 step: {peak / 1e6:.3f} MB "
              f"(one parameter-sized buffer is {nbytes / 1e6:.0f} MB)")


def _fmt(seconds):
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


if __name__ == "__main__":
    main()
