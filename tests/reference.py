"""Imports of the reference implementations the tests compare against (test-only dependencies).

On a reader's laptop without them the reference tests skip, saying why; in CI (the environment variable CI is
set) a missing reference is a failure, never a skip.
"""

import importlib
import os

import pytest

WHY = {
    "torch": "torch==2.13.0 (requirements-dev.txt) is the reference for every optimizer, scheduler and network",
    "lion_pytorch": "lion-pytorch (requirements-dev.txt) is the reference for Lion",
    "sophia_opt": "sophia-opt (requirements-dev.txt) packages the authors' SophiaG, the reference for Sophia",
    "schedulefree": "schedulefree (requirements-dev.txt) is the authors' Schedule-Free SGD and AdamW, their reference",
    "prodigyopt": "prodigyopt (requirements-dev.txt) is the authors' Prodigy, its reference",
    "pytorch_optimizer": "pytorch-optimizer (requirements-dev.txt) is the reference for Shampoo and SOAP",
}


def require(module: str):
    """Import ``module`` or skip the calling test module (fail under CI) with a message saying why."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"{module} is not installed: {WHY.get(module, 'a reference implementation')}. " \
                  f"Install the test requirements: pip install -r requirements-dev.txt ({error})"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)
