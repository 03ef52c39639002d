"""The workloads a course runs: a 10,000-run sweep and `import optimlab`; reports figures, asserts nothing.

    python benchmarks/bench_course.py

1. A sweep of 10,000 Adam runs x 500 steps on a 2-D ravine, each run with its own learning rate, as
   `optimlab.experiments.sweep` does it (one vectorized run), against the best `torch.optim` routes to the same
   work: one optimizer with a parameter group per run (torch.optim's only per-run learning rate), measured on
   fewer runs and scaled linearly, and a functional Adam written by hand on one (10000, 2) tensor with a
   (10000, 1) learning-rate tensor (not torch.optim, for reference). Target: optimlab >= 1.5x faster than the
   best torch.optim route.
2. `import optimlab` in a fresh interpreter, minus the interpreter's own start-up; and which heavy modules it
   loads (matplotlib and ipywidgets must not be). Target: under 150 ms.
(Widget build times: benchmarks/bench_widgets.py. Optimizer steps: benchmarks/bench_optimizers.py.)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import optimlab
from optimlab import experiments, problems

try:
    import torch
except ImportError:  # pragma: no cover
    raise SystemExit("torch==2.13.0 is needed for the comparison: pip install -r requirements-dev.txt") from None

RUNS, STEPS = 10_000, 500


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def optimlab_sweep(problem, lrs):
    return experiments.sweep(problem, "Adam", steps=STEPS, lr=lrs)


def torch_param_groups(problem, lrs, runs):
    """torch.optim with one parameter group per run: each row its own tensor and learning rate."""
    hessian = torch.tensor(problem.hessian(problem.x0), dtype=torch.float64)
    rows = [torch.tensor(problem.x0, dtype=torch.float64, requires_grad=True) for _ in range(runs)]
    opt = torch.optim.Adam([{"params": [r], "lr": float(lr)} for r, lr in zip(rows, lrs[:runs])])
    x_star = torch.tensor(problem.x_star, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(STEPS):
            for r in rows:
                r.grad = hessian @ (r - x_star)
            opt.step()


def torch_functional(problem, lrs):
    """Adam by hand on one tensor with a learning-rate column: the fastest torch route, outside torch.optim."""
    hessian = torch.tensor(problem.hessian(problem.x0), dtype=torch.float64)
    x_star = torch.tensor(problem.x_star, dtype=torch.float64)
    x = torch.tensor(np.tile(problem.x0, (RUNS, 1)), dtype=torch.float64)
    lr = torch.tensor(lrs[:, None])
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, STEPS + 1):
        g = (x - x_star) @ hessian
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v.sqrt() / (1 - b2**t) ** 0.5).add_(eps)
        x -= (lr / (1 - b1**t)) * m / denom  # a step size per run


def import_time(repeat=9):
    # Byte-compile first, as an installed package is: this machine sets PYTHONDONTWRITEBYTECODE, so without it
    # every import would also compile the sources.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(optimlab.__file__).parent)], check=True)
    code = "import time; t = time.perf_counter(); import optimlab; print(time.perf_counter() - t)"
    base = "import time; t = time.perf_counter(); import numpy; print(time.perf_counter() - t)"
    ours = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeat)]
    numpy_only = [float(subprocess.run([sys.executable, "-c", base], capture_output=True, text=True,
                                       check=True).stdout) for _ in range(repeat)]
    loaded = subprocess.run([sys.executable, "-c", "import sys, optimlab; print(sorted(m for m in sys.modules "
                             "if m.split('.')[0] in {'matplotlib', 'ipywidgets', 'torch', 'scipy', 'sklearn'}))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    return statistics.median(ours), statistics.median(numpy_only), loaded


def main():
    problem = problems.Ravine(condition_number=100.0)
    lrs = np.logspace(-4, 0, RUNS)
    ours = best_of(lambda: optimlab_sweep(problem, lrs))
    sample = 200
    groups = best_of(lambda: torch_param_groups(problem, lrs, sample), repeat=1) * RUNS / sample
    functional = best_of(lambda: torch_functional(problem, lrs))
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"| sweep of {RUNS:,} Adam runs x {STEPS} steps, a learning rate per run | seconds | optimlab's speed-up |")
    print("|---|---|---|")
    print(f"| optimlab.experiments.sweep (one vectorized run) | {ours:.3f} | 1 |")
    print(f"| torch.optim.Adam, a parameter group per run ({sample} runs measured, scaled) | {groups:.1f} | "
          f"{groups / ours:.0f}x |")
    print(f"| Adam written by hand in torch on one tensor (not torch.optim) | {functional:.3f} | "
          f"{functional / ours:.2f}x |")
    median, numpy_median, loaded = import_time()
    print(f"\nimport optimlab: {median * 1e3:.0f} ms in a fresh interpreter (numpy alone: {numpy_median * 1e3:.0f} ms; "
          f"target < 150 ms); heavy modules loaded: {loaded}")


if __name__ == "__main__":
    main()
