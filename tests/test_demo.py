"""The command-line demo: `python -m optimlab`."""

import contextlib
import io
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


@pytest.fixture(scope="module")
def default_output():
    """The demo as a reader runs it (default steps and optimizers), on the problems that have a target."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--problems", "ravine,rosenbrock,beale", "--quiet"]) == 0
    return out.getvalue()


def _section(out, title):
    """The table of one problem (or the schedules): the lines from its title to the next blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


@pytest.mark.parametrize("problem", ["ravine", "rosenbrock", "beale"])
def test_steps_to_target_never_contradicts_the_final_loss(default_output, problem):
    # a step count means the loss stayed at or below the target from there to the end, so the final loss is too
    title, header, *rows = _section(default_output, problem)
    target = float(header.split("steps to ")[1].split()[0])
    assert rows
    end = header.index("steps to") + len(f"steps to {header.split('steps to ')[1].split()[0]}")
    for row in rows:
        final = float(row.split()[-2])
        reached = row[end - 16:end].strip()  # the steps-to column: 16 characters, right-aligned under its head
        if reached.isdigit():
            assert final <= target, row
        else:
            assert reached == "not reached" or reached.startswith("dipped at "), row
            assert final > target, row


def _schedules(out):
    title, header, *rows = _section(out, "Learning-rate schedules")
    table = {}
    for row in rows:
        if row.startswith("  ") and not row.startswith("   ") and row[19:20] in "▁▂▃▄▅▆▇█":
            table[row[2:18].strip()] = (row[19:67], float(row.split()[-1]))
    return table


def test_schedule_sparklines_share_one_scale_so_constant_is_full_height(default_output):
    table = _schedules(default_output)
    assert table["constant"][0] == "█" * 48
    assert table["cosine"][0][0] == table["step decay"][0][0] == "█"  # both start at the peak
    assert table["warmup + cosine"][0][0] == "▁" and table["cosine"][0][-1] == "▁"


def test_schedules_that_end_small_end_below_the_constant_rate(default_output):
    # the demo's lesson: a schedule that ends small averages out the noise that constant-rate SGD hovers in
    table = _schedules(default_output)
    constant = table["constant"][1]
    ending_small = {label: loss for label, (shape, loss) in table.items() if shape[-1] == "▁"}
    assert len(ending_small) >= 4
    assert all(loss < constant for loss in ending_small.values()), (constant, ending_small)


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
