"""State memory per optimizer: bytes of optimizer state per parameter element, for the chapters' table.

    python benchmarks/bench_state_memory.py

Counts the bytes of every state array optimlab keeps (``opt.state``, after one step) for float32 weight matrices
of a few transformer-like shapes, and divides by the number of parameter elements. Where torch.optim has the
same optimizer, its state after one step is counted the same way, as a check (it also keeps ``step`` as a
tensor, 4 bytes per parameter array, not per element). Memory, unlike time, is exact: the figures do not move
from run to run.
"""

from __future__ import annotations

import numpy as np

import optimlab as ol

try:
    import torch
except ImportError:  # the table is optimlab's own; torch only checks it
    torch = None

SHAPES = [(768, 768), (768, 3072), (4096, 1024)]
OPTIMIZERS = [
    ("SGD (momentum 0.9)", "SGD", dict(lr=0.01, momentum=0.9)),
    ("Adam / AdamW", "AdamW", dict(lr=1e-3)),
    ("Lion", "Lion", dict(lr=1e-4)),
    ("Muon", "Muon", dict(lr=0.02)),
    ("Adafactor", "Adafactor", dict(lr=0.01)),
    ("Shampoo", "Shampoo", dict(lr=1e-3, eps=1e-3)),
    ("SOAP", "SOAP", dict(lr=3e-3)),
]


def state_bytes(state_entries):
    total = 0
    for entry in state_entries:
        for key, value in entry.items():
            if key == "step":
                continue
            if isinstance(value, np.ndarray):
                total += value.nbytes
            elif torch is not None and isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total


def ours(name, kwargs, shape, rng):
    theta = rng.standard_normal(shape).astype(np.float32)
    opt = getattr(ol, name)([theta], **kwargs)
    opt.step([rng.standard_normal(shape).astype(np.float32) * 1e-2])
    return state_bytes(opt.state.values()) / theta.size


def theirs(name, kwargs, shape, rng):
    if torch is None or not hasattr(torch.optim, name) or name == "Lion":
        return None
    p = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)))
    opt = getattr(torch.optim, name)([p], **kwargs)
    p.grad = torch.from_numpy(rng.standard_normal(shape).astype(np.float32) * 1e-2)
    opt.step()
    return state_bytes(opt.state.values()) / p.numel()


def main():
    rng = np.random.default_rng(0)
    head = " | ".join(f"{m}×{n}" for m, n in SHAPES)
    print("Bytes of optimizer state per float32 parameter element (a float32 parameter is 4 bytes)\n")
    print(f"| optimizer | {head} | torch.optim (same shapes) |")
    print("|---|" + "---|" * len(SHAPES) + "---|")
    for label, name, kwargs in OPTIMIZERS:
        row = [ours(name, kwargs, shape, rng) for shape in SHAPES]
        check = [theirs(name, kwargs, shape, rng) for shape in SHAPES]
        check_text = "—" if check[0] is None else " / ".join(f"{c:.3g}" for c in check)
        print(f"| {label} | " + " | ".join(f"{b:.3g}" for b in row) + f" | {check_text} |")


if __name__ == "__main__":
    main()
