"""The command-line demo: `python -m optimlab`."""

import subprocess
import sys

import pytest

from optimlab.__main__ import main


def test_demo_prints_the_comparison_schedules_and_clipping(capsys):
    assert main(["--problems", "ravine,rosenbrock", "--optimizers", "SGD,momentum,Adam", "--steps", "60",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Convergence comparison: 60 steps" in out
    for name in ("SGD", "Momentum", "Adam", "ravine", "rosenbrock", "steps to 1e-06", "final loss"):
        assert name in out
    assert "warmup + cosine" in out and "WSD" in out and "one-cycle" in out
    assert "global norm 1.0" in out and "value 0.5" in out
    for name in ("Muon + AdamW", "Shampoo + AdamW", "SOAP + AdamW", "Adafactor", "test accuracy"):
        assert name in out


def test_demo_writes_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="figures need matplotlib (requirements.txt)")
    assert main(["--problems", "ravine", "--optimizers", "SGD,Adam", "--steps", "30", "--quiet",
                 "--figures", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["loss_ravine.png", "paths_ravine.png", "schedules.png"]
    assert all((tmp_path / name).read_bytes().startswith(b"\x89PNG") for name in written)


@pytest.mark.parametrize("args, message", [
    (["--optimizers", "Adamm"], "unknown optimizer 'Adamm'"),
    (["--problems", "moon"], "unknown problem 'moon'"),
    (["--steps", "3"], "--steps must be at least 10, got 3"),
])
def test_demo_rejects_bad_names_with_a_message_not_a_traceback(args, message):
    done = subprocess.run([sys.executable, "-m", "optimlab", *args], capture_output=True, text=True)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_demo_help():
    done = subprocess.run([sys.executable, "-m", "optimlab", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--optimizers" in done.stdout and "--figures" in done.stdout
