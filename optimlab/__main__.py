"""``python -m optimlab``: every optimizer on the same tasks, schedules, clipping, and a convergence comparison.

The comparison is fair in the way the course asks for: each optimizer gets its own learning rate, the best of a
log-spaced grid, found by one vectorized sweep per optimizer and problem (all grid points run at once).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import experiments as ex
from . import problems as P
from . import schedules as S

PROBLEMS = {
    "ravine": lambda: P.Ravine(condition_number=100.0, angle=0.4),
    "rosenbrock": lambda: P.Rosenbrock(),
    "beale": lambda: P.Beale(),
    "noisy-quadratic": lambda: P.NoisyQuadratic(condition_number=20.0, noise=1.0),
    "moving-optimum": lambda: P.MovingOptimum(),
    "sparse-logistic": lambda: P.SparseLogistic(n_samples=1000, seed=0),
}
TARGET = {"ravine": 1e-6, "rosenbrock": 1e-4, "beale": 1e-4}
LR_GRID = np.logspace(-4, 0.5, 13)
SPARKS = "▁▂▃▄▅▆▇█"
PEAK = 0.5        # the schedules' peak rate: high enough that constant-rate SGD sits at its noise floor
NOISY_RUNS = 500  # SGD runs per schedule, one vectorized run: their mean final loss is the expected loss


def _names(text, known, what):
    names = [n.strip() for n in text.split(",") if n.strip()]
    lookup = {k.lower(): k for k in known}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}")
    return [lookup[n.lower()] for n in names]


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m optimlab",
        description="Run every optimizer of the course on the same problems (each with its own best learning "
                    "rate), show learning-rate schedules and gradient clipping, and print a convergence table.")
    parser.add_argument("--optimizers", default=",".join(ex.OPTIMIZERS),
                        help="comma-separated names (default: all): " + ", ".join(ex.OPTIMIZERS))
    parser.add_argument("--problems", default=",".join(PROBLEMS),
                        help="comma-separated names (default: all): " + ", ".join(PROBLEMS))
    parser.add_argument("--steps", type=int, default=300, help="steps per run (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed for stochastic gradients (default 0)")
    parser.add_argument("--figures", metavar="DIR", help="write PNG figures into DIR (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    args = parser.parse_args(argv)
    try:
        args.optimizers = _names(args.optimizers, list(ex.OPTIMIZERS), "optimizer")
        args.problems = _names(args.problems, list(PROBLEMS), "problem")
    except ValueError as error:
        parser.error(str(error))
    if args.steps < 10:
        parser.error(f"--steps must be at least 10, got {args.steps}")
    return args


class Progress:
    def __init__(self, total, quiet):
        self.total, self.done, self.quiet = total, 0, quiet or not sys.stderr.isatty()

    def __call__(self, what):
        self.done += 1
        if not self.quiet:
            sys.stderr.write(f"\r[{self.done}/{self.total}] {what:<48}")
            sys.stderr.flush()

    def close(self):
        if not self.quiet:
            sys.stderr.write("\r" + " " * 64 + "\r")


def tune(problem, name, steps, seed):
    """The best learning rate on the grid for this optimizer and problem: one vectorized sweep."""
    result = ex.sweep(problem, name, steps=steps, lr=LR_GRID, seed=seed)
    tail = result.trajectory.losses[-max(1, steps // 10):]
    with np.errstate(all="ignore"):  # diverged runs' losses are inf/NaN: they score inf
        score = np.where(np.isfinite(tail), tail, np.inf).mean(axis=0)
    score = np.where(result.diverged, np.inf, score)
    best = int(np.argmin(score))
    return float(LR_GRID[best]), bool(np.isfinite(score[best]))


def compare(args, progress):
    rows, runs = {}, {}
    for pname in args.problems:
        problem = PROBLEMS[pname]()
        rows[pname], runs[pname] = [], {}
        for name in args.optimizers:
            progress(f"{name} on {pname}")
            lr, ok = tune(problem, name, args.steps, args.seed)
            start = time.perf_counter()
            tr = ex.run(problem, name, steps=args.steps, lr=lr, seed=args.seed)
            wall = time.perf_counter() - start
            rows[pname].append((name, lr if ok else None, _reached(tr, TARGET.get(pname)), float(tr.final_loss),
                                wall))
            runs[pname][name] = tr
    return rows, runs


def _reached(tr, target):
    """The steps-to-target cell: the first step from which the loss stays at or below ``target`` to the end (as
    the chapters count for methods that spiral); a run that dips below and comes back says where it first dipped.
    None for a problem without a target."""
    if target is None:
        return None
    stays = int(tr.steps_to(target, stay=True))
    if stays >= 0:
        return str(stays)
    dipped = int(tr.steps_to(target))
    return f"dipped at {dipped}" if dipped >= 0 else "not reached"


def print_comparison(rows, steps):
    print(f"Convergence comparison: {steps} steps, each optimizer at its best learning rate on a grid of "
          f"{len(LR_GRID)} values from {LR_GRID[0]:.0e} to {LR_GRID[-1]:.1f}.\n"
          f"\"steps to\" counts the steps until the loss stays at or below the target to the end of the run; "
          f"\"dipped at N\"\nmarks a run that first went below it at step N but did not stay there.")
    for pname, table in rows.items():
        target = TARGET.get(pname)
        width = max(10, *(len(row[0]) for row in table))
        head = f"  {'optimizer':<{width}} {'best lr':>9}"
        if target is not None:
            head += f" {f'steps to {target:.0e}':>16}"
        print(f"\n{pname}")
        print(f"{head} {'final loss':>12} {'time':>9}")
        for name, lr, reached, final, wall in sorted(table, key=lambda r: (r[3] if np.isfinite(r[3]) else np.inf)):
            lr_text = f"{lr:9.2e}" if lr is not None else f"{'diverged':>9}"
            reach = "" if reached is None else f" {reached:>16}"
            print(f"  {name:<{width}} {lr_text}{reach} {final:12.3e} {wall * 1e3:7.1f}ms")


def spark(values, top):
    """A sparkline of ``values`` from 0 (▁) to ``top`` (█): every schedule drawn against the same peak."""
    scaled = np.clip(np.asarray(values, dtype=float) / top, 0.0, 1.0)
    return "".join(SPARKS[int(round(v * (len(SPARKS) - 1)))] for v in scaled)


def demo_schedules(steps, seed):
    print(f"\nLearning-rate schedules ({steps} steps, peak {PEAK}; each sparkline samples 48 steps, from 0 to the "
          f"peak)")
    schedules = {
        "constant": S.constant_schedule(PEAK),
        "step decay": S.step_schedule(PEAK, step_size=steps // 3, gamma=0.1),
        "cosine": S.cosine_schedule(PEAK, T_max=steps),
        "warmup + cosine": S.warmup_cosine_schedule(PEAK, warmup_steps=steps // 10, total_steps=steps),
        "one-cycle": S.one_cycle_schedule(PEAK, total_steps=steps),
        "WSD": S.wsd_schedule(PEAK, warmup_steps=steps // 10, stable_steps=steps * 7 // 10,
                              decay_steps=steps - steps // 10 - steps * 7 // 10),
        "SGDR": S.cosine_restarts_schedule(PEAK, T_0=steps // 7, T_mult=2),
    }
    problem = P.NoisyQuadratic(condition_number=20.0, noise=1.0)
    starts = np.broadcast_to(problem.x0, (NOISY_RUNS, problem.dim))
    t = np.arange(steps)
    sample = np.linspace(0, steps - 1, 48).astype(int)
    curves = {}
    print(f"  {'schedule':<16} {'shape':<48} {f'SGD mean final loss ({NOISY_RUNS} runs)':>31}")
    for label, schedule in schedules.items():
        lrs = np.asarray(schedule(t), dtype=float)
        curves[label] = lrs
        tr = ex.run(problem, "SGD", steps=steps, x0=starts, lr=1.0, schedule=lambda k, s=schedule: float(s(k)),
                    seed=seed, record_path=False)
        print(f"  {label:<16} {spark(lrs[sample], PEAK)} {float(np.mean(tr.final_loss)):31.3e}")
    floor = problem.sgd_stationary_loss(PEAK)
    print(f"  Constant-rate SGD hovers at its noise floor ({floor:.3e} in theory); a schedule that ends small "
          f"averages\n  the noise out and ends below it.")
    if curves["SGDR"][-1] > PEAK / 10:
        print("  SGDR has just restarted: it ends near the peak, and near the floor.")
    return curves


def demo_clipping(steps, seed):
    print("\nGradient clipping on an exploding-gradient recurrence (RNN cliff), SGD with lr 1.0, 200 starting "
          "points near the cliff")
    problem = P.RNNCliff()
    rng = np.random.default_rng(seed)
    starts = problem.x0 + rng.normal(scale=0.05, size=(200, 2))
    print(f"  {'clipping':<22} {'runs diverged':>14} {'median final loss':>18} {'largest gradient used':>22}")
    results = {}
    for label, options in (("none", {}), ("global norm 1.0", {"clip_norm": 1.0}),
                           ("value 0.5", {"clip_value": 0.5})):
        tr = ex.run(problem, "SGD", steps=steps, x0=starts, lr=1.0, record_path=False, **options)
        finals = np.where(tr.diverged, np.nan, tr.final_loss)
        print(f"  {label:<22} {int(np.sum(tr.diverged)):>14} {np.nanmedian(finals):18.3e} "
              f"{float(np.nanmax(tr.grad_norms)):22.3e}")
        results[label] = tr
    return results


MATRIX_LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def demo_matrix_optimizers(epochs, seed):
    """Muon, Shampoo and SOAP on an MLP's hidden matrices (AdamW for biases and the head), against AdamW and
    Adafactor on everything; each at its best learning rate of a short grid (by final training loss)."""
    from . import matrix
    from . import optimizers as O
    from .problems import DigitsMLP

    try:
        mlp = DigitsMLP(hidden=(64, 64))
    except ImportError:
        print("\nscikit-learn is not installed: no digits MLP (pip install scikit-learn)")
        return {}
    print(f"\nMatrix optimizers on the digits MLP 64-64-64-10, {epochs} epochs of minibatches of 64, best lr of "
          f"{', '.join(f'{lr:g}' for lr in MATRIX_LR_GRID)}\n  Muon, Shampoo and SOAP on the two hidden matrices, "
          f"AdamW (lr 3e-3) on biases and the head")

    def plan(name):
        def make(params, lr):
            if name == "AdamW":
                return [O.AdamW(params, lr=lr, weight_decay=0.0)]
            if name == "Adafactor":
                return [matrix.Adafactor(params, lr=lr)]
            matrices, rest = matrix.split_hidden_matrices(params, head=params[-2:])
            return [getattr(matrix, name)(matrices, lr=lr, weight_decay=0.0), O.AdamW(rest, lr=3e-3, weight_decay=0.0)]
        return make

    def train(make, lr):
        params = mlp.init_params(seed)
        opts = make(params, lr)
        order = {id(p): i for i, p in enumerate(params)}
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            for batch in mlp.minibatches(64, rng):
                grads = mlp.loss_and_grads(params, batch)[1]
                for opt in opts:
                    opt.step([grads[order[id(p)]] for g in opt.param_groups for p in g["params"]])
        return params

    results = {}
    print(f"  {'optimizer':<20} {'best lr':>9} {'train loss':>11} {'test accuracy':>14} {'time':>8}")
    for name in ("AdamW", "Adafactor", "Muon", "Shampoo", "SOAP"):
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            scored = [(float(mlp.loss(p)), lr, p) for lr in MATRIX_LR_GRID for p in [train(plan(name), lr)]]
        loss, lr, params = min(scored, key=lambda r: r[0] if np.isfinite(r[0]) else np.inf)
        label = name if name in ("AdamW", "Adafactor") else f"{name} + AdamW"
        results[name] = (lr, loss, float(mlp.accuracy(params)))
        print(f"  {label:<20} {lr:9.0e} {loss:11.3e} {results[name][2]:14.3f} "
              f"{time.perf_counter() - start:7.1f}s")
    return results


def write_figures(directory, runs, curves):
    from . import plotting

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for pname, by_optimizer in runs.items():
        problem = PROBLEMS[pname]()
        losses = {name: tr.losses for name, tr in by_optimizer.items()}
        ax = _wide_axes(plotting)
        plotting.loss_curves(losses, title=f"{pname}: loss at each optimizer's best learning rate", ax=ax,
                             legend=False)
        written.append(_save(directory / f"loss_{pname}.png", _png_with_legend_outside(plotting, ax)))
        if problem.dim == 2 and getattr(problem, "bounds", None) is not None:
            paths = {name: tr.path for name, tr in by_optimizer.items()}
            ax = _wide_axes(plotting)
            plotting.contour_paths(problem.loss, problem.bounds, paths, mark=getattr(problem, "x_star", None),
                                   title=f"{pname}: paths", ax=ax, legend=False)
            written.append(_save(directory / f"paths_{pname}.png", _png_with_legend_outside(plotting, ax)))
    if curves:
        fig = plotting.lr_curves(curves, title="learning-rate schedules")
        written.append(_save(directory / "schedules.png", plotting.to_png(fig)))
    return written


def _wide_axes(plotting):
    """Axes in a figure wide enough for a legend of a dozen optimizers beside the plot."""
    return plotting.figure(width=7.0, height=3.9).add_subplot()


def _png_with_legend_outside(plotting, ax):
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize="small")
    return plotting.to_png(ax.figure)


def _save(path, data):
    path.write_bytes(data)
    return path


def main(argv=None):
    args = parse(argv)
    started = time.perf_counter()
    progress = Progress(len(args.optimizers) * len(args.problems), args.quiet)
    try:
        rows, runs = compare(args, progress)
    finally:
        progress.close()
    print_comparison(rows, args.steps)
    curves = demo_schedules(args.steps, args.seed)
    demo_clipping(min(args.steps, 300), args.seed)
    demo_matrix_optimizers(max(1, args.steps // 40), args.seed)
    if args.figures:
        try:
            written = write_figures(args.figures, runs, curves)
        except ImportError:
            print("\nmatplotlib is not installed: no figures written (pip install matplotlib)", file=sys.stderr)
            return 1
        print(f"\n{len(written)} figures written to {args.figures}")
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
