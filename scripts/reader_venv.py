"""The reader's environment and nothing else: a virtual environment in _build/reader-venv made from requirements.txt.

The JupyterLab tests run JupyterLab, its extensions and its kernel from it, so they prove that what the how-to-run page
says (`pip install -r requirements.txt`, then `jupyter lab notebooks/`) gives a working JupyterLab: the development
environment in .venv holds much more (the book's toolchain, the tests' packages), which could hide a missing one.
It is made again only when requirements.txt or pyproject.toml changes (a stamp in it holds their digest); pip takes
the packages from its cache, where installing .venv put them, so that is quick.

    python scripts/reader_venv.py        # make it if it is missing or stale; say how long that took
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "_build" / "reader-venv"
BIN = VENV / "bin"
STAMP = VENV / ".requirements-digest"
INPUTS = ("requirements.txt", "pyproject.toml")


def digest() -> str:
    """What the environment is made from: the requirements, the package's metadata and the Python version."""
    h = hashlib.sha256(sys.version.encode())
    for name in INPUTS:
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure() -> Path:
    """The reader's environment, made (again) if it is missing or older than requirements.txt: its bin/ folder."""
    key = digest()
    if STAMP.exists() and STAMP.read_text() == key:
        return BIN
    shutil.rmtree(VENV, ignore_errors=True)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    # --no-compile: Python compiles what JupyterLab imports when it does (half pip's time went to compiling all).
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-compile", "-r", "requirements.txt"], cwd=ROOT, check=True)  # `-e .`: the repository
    # matplotlib builds its font cache on first import and says so: here, not in a chapter's first figure.
    subprocess.run([str(BIN / "python"), "-c", "import matplotlib.pyplot"], check=True, capture_output=True)
    STAMP.write_text(key)
    print(f"reader-venv: made {VENV.relative_to(ROOT)} from requirements.txt in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    return BIN


if __name__ == "__main__":
    print(ensure().parent)
