"""Re-execute chapter notebooks in place, so their stored outputs are what the code produces now.

Notebooks are committed with outputs (readers on GitHub or Colab see results without running) but without
widget state: the book build produces that, and it would add megabytes to every commit. This script runs each
notebook top to bottom in its own folder, as the book build and nbval do, then strips what should not be
committed: widget state, execution timings, and kernel details that differ between machines.

Usage: python scripts/execute_notebooks.py [NOTEBOOK ...]     (default: chapters/*.ipynb)
       python scripts/execute_notebooks.py --strip-only [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def strip(nb: nbformat.NotebookNode) -> None:
    """Remove widget state and run-specific metadata; keep outputs and cell tags."""
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    language_info = nb.metadata.get("language_info")
    if language_info:
        language_info.pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        cell.metadata.pop("collapsed", None)


def execute(path: Path, timeout: int) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=False,
    )
    client.execute()
    strip(nb)
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: chapters/*.ipynb")
    parser.add_argument("--strip-only", action="store_true", help="strip metadata without executing")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    args = parser.parse_args(argv)

    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    if not notebooks:
        print("no chapter notebooks to execute")
        return 0
    for path in notebooks:
        start = time.perf_counter()
        if args.strip_only:
            nb = nbformat.read(path, as_version=4)
            strip(nb)
            nbformat.write(nb, path)
            print(f"stripped {path}")
            continue
        try:
            execute(path, args.timeout)
        except Exception as error:  # report which notebook failed, then stop with an error
            print(f"FAILED {path}: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        print(f"executed {path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
