"""Numbers in the prose that cannot drift from the outputs beside them.

Every number a chapter's text or figure captions quote from an experiment is registered in
`tests/prose_numbers/<chapter>.toml`, one `[[number]]` table each:

    [[number]]
    prose = "reaches 5.9×10⁻⁷ at η = 1.95"             # exact substring of a markdown cell or a caption
    output = 'β = 0 row: best (5\\.9\\d*e-07) at η = (1\\.95)'   # regex over the stored text outputs
    ignore = ["0"]                                      # optional: numbers of the snippet not paired

The test checks that the snippet is in the prose (whitespace runs count as one space), that the regex matches
the concatenated text outputs of the chapter's code cells, and that the numbers of the snippet, in order, equal
the regex's capture groups, in order (or, when the groups are named, in the order of their names: a, b, ...),
at the precision the prose writes them: "5.9×10⁻⁷" holds for any output
within 0.05×10⁻⁷, "26%" for any within 0.5% (0.26 or 26%). Strict nbval proves the stored outputs are what a
fresh run prints, so the chain from prose to computation is closed.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Path(__file__).resolve().parent / "prose_numbers"

_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_NUMBER = re.compile(
    r"""
    (?<![\w.^_{])(?<!\\)(?<![A-Za-z_]-)                   # not part of a word, an exponent, a label or a LaTeX command
    (?P<sign>[-−](?=[\d.]))?
    (?:
        10(?:\^\s*\{?\s*(?P<pow4>[-−+]?\d+)\s*\}?|(?P<pow5>[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))     # a bare power of ten
      | (?P<mantissa>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        (?:
            \s*(?:×|\\times|\\cdot|·)\s*10\s*(?:\^\s*\{?\s*(?P<pow1>[-−+]?\d+)\s*\}?|(?P<pow2>[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))
          | [eE](?P<pow3>[-+−]?\d+)
        )?
    )
    (?P<percent>\s*\\?%)?
    (?![0-9A-Za-z_])
    """,
    re.VERBOSE,
)


def parse_numbers(text: str) -> list[tuple[str, float, float]]:
    """Every number written in `text`, as (as written, value, quantum): the quantum is one unit of the last
    digit written, so "5.9×10⁻⁷" is (5.9e-7, 1e-8), "26%" is (0.26, 0.01), "10⁻³" is (1e-3, 1e-3) and
    "69,000" is (69000, 1000): an integer's trailing zeros are not significant."""
    found = []
    for match in _NUMBER.finditer(text):
        power = next((match[k] for k in ("pow1", "pow2", "pow3", "pow4", "pow5") if match[k]), "0")
        power = int(power.translate(_SUPERSCRIPT).replace("−", "-"))
        mantissa = (match["mantissa"] or "1").replace(",", "")
        # an integer's trailing zeros are not significant: "69,000" is 69 thousand, "690" is 69 tens
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else len(mantissa.rstrip("0") or "0") - len(mantissa)
        scale = 10.0**power * (0.01 if match["percent"] else 1.0)
        sign = -1.0 if match["sign"] else 1.0
        found.append((match[0].strip(), sign * float(mantissa) * scale, 10.0**-decimals * scale))
    return found


def agrees(prose: tuple[str, float, float], output: tuple[str, float, float]) -> str | None:
    """None when the output's number, rounded to the digits the prose writes, is the prose's number;
    otherwise why not. The output must carry at least the prose's precision."""
    written, value, quantum = prose
    printed, result, result_quantum = output
    if result_quantum > quantum * (1 + 1e-9):
        return f"the prose writes {written!r} more precisely than the output prints {printed!r}"
    if abs(value - result) > quantum / 2 * (1 + 1e-9) + 1e-300:
        return f"the prose says {written!r} but the output says {printed!r}"
    return None


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def chapter_text(notebook: dict) -> tuple[list[str], str]:
    """(the prose: each markdown cell and each figure caption, whitespace normalized; the stored text
    outputs of the code cells, one cell after another). A cell's streams are joined as Jupyter shows them, so
    a line that the kernel happened to send in two pieces is still one line."""
    prose, outputs = [], []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            prose.append(_normalize("".join(cell["source"])))
        elif cell["cell_type"] == "code":
            caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption")
            if caption:
                prose.append(_normalize(caption))
            shown = ""
            for out in cell.get("outputs", []):
                text = "".join(out.get("text") or out.get("data", {}).get("text/plain") or "")
                shown += text if out["output_type"] == "stream" else text + "\n"
            outputs.append(shown)
    return prose, "\n".join(outputs)


def check_entry(entry: dict, prose: list[str], outputs: str) -> list[str]:
    """The problems with one registered number (an empty list when prose and output agree)."""
    snippet = _normalize(entry["prose"])
    problems = []
    if not any(snippet in text for text in prose):
        problems.append(f"{entry['prose']!r} is not in the prose")
    match = re.search(entry["output"], outputs, re.MULTILINE)
    if match is None:
        problems.append(f"/{entry['output']}/ matches no stored output")
    if problems:
        return problems
    ignore = set(entry.get("ignore", []))
    written = [n for n in parse_numbers(snippet) if n[0] not in ignore]
    printed = []
    named = match.groupdict()
    for group in [named[k] for k in sorted(named)] if named else match.groups():
        numbers = parse_numbers(group or "")
        if len(numbers) != 1:
            return [f"capture group {group!r} of /{entry['output']}/ does not hold exactly one number"]
        printed.append(numbers[0])
    if not written or len(written) != len(printed):
        return [
            f"{entry['prose']!r} has numbers {[n[0] for n in written]} but /{entry['output']}/ "
            f"captures {[n[0] for n in printed]}: pair each with one capture group (or list it in ignore)"
        ]
    return [p for p in (agrees(w, o) for w, o in zip(written, printed)) if p]


def _registry() -> list[Path]:
    return sorted(REGISTRY.glob("*.toml"))


@pytest.mark.parametrize("registry", _registry(), ids=lambda p: p.stem)
def test_prose_numbers_match_the_stored_outputs(registry: Path):
    notebook = json.loads((ROOT / "chapters" / f"{registry.stem}.ipynb").read_text(encoding="utf-8"))
    prose, outputs = chapter_text(notebook)
    entries = tomllib.loads(registry.read_text(encoding="utf-8"))["number"]
    problems = [f"{e['prose']!r}: {p}" for e in entries for p in check_entry(e, prose, outputs)]
    assert not problems, f"{registry.name}:\n  " + "\n  ".join(problems)


# The machinery itself, on a tiny notebook: a test that cannot fail proves nothing.


def _fake_notebook(markdown: str, caption: str, printed: str) -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "source": [markdown]},
            {
                "cell_type": "code",
                "metadata": {"mystnb": {"figure": {"caption": caption}}},
                "source": ["print(...)"],
                "outputs": [  # the kernel may send one line in two stream messages
                    {"output_type": "stream", "name": "stdout", "text": [printed[:10]]},
                    {"output_type": "stream", "name": "stdout", "text": [printed[10:]]},
                ],
            },
        ]
    }


_FAKE = _fake_notebook(
    "Plain SGD reaches\n5.9×10⁻⁷ at $\\eta = 1.95$, and momentum saves 26% of the steps.",
    "Loss after $10^{3}$ steps: 4.5e6 at most.",
    "β = 0 row: best 5.93e-07 at η = 1.95\nsteps saved: 0.263\nworst loss 4.46e+06 after 1000 steps\n",
)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"prose": "reaches 5.9×10⁻⁷ at $\\eta = 1.95$", "output": r"best (\S+) at η = (\S+)"}, []),
        ({"prose": "saves 26% of", "output": r"steps saved: (\S+)"}, []),
        ({"prose": "after $10^{3}$ steps: 4.5e6", "output": r"(\S+) after (\d+) steps", "ignore": []}, ["order"]),
        ({"prose": "4.5e6 at most", "output": r"worst loss (\S+)"}, []),
        ({"prose": "after $10^{3}$ steps: 4.5e6", "output": r"(?P<b>\S+) after (?P<a>\d+) steps"}, []),
        ({"prose": "reaches 5.8×10⁻⁷", "output": r"best (\S+) at"}, ["not in the prose"]),
        ({"prose": "reaches 5.9×10⁻⁷", "output": r"best (\S+) on"}, ["matches no stored output"]),
        ({"prose": "saves 26% of", "output": r"best (\S+) at η = (\S+)"}, ["pair each"]),
        ({"prose": "at $\\eta = 1.95$", "output": r"best 5.93e-07 at η = (\S+)\s+steps saved: (\S+)"}, ["pair each"]),
    ],
)
def test_machinery_on_a_fake_chapter(entry, expected):
    prose, outputs = chapter_text(_FAKE)
    problems = check_entry(entry, prose, outputs)
    if expected == ["order"]:  # numbers pair in order: 10³ with 4.46e+06 and 4.5e6 with 1000
        assert len(problems) == 2, problems
    else:
        assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems)), problems


def test_a_changed_number_in_the_prose_fails():
    """The same entry passes on the chapter as written and fails once one digit of the prose changes."""
    entry = {"prose": "reaches 5.9×10⁻⁷ at", "output": r"best (\S+) at"}
    prose, outputs = chapter_text(_FAKE)
    assert check_entry(entry, prose, outputs) == []
    edited = json.loads(json.dumps(_FAKE, ensure_ascii=False).replace("5.9×10⁻⁷", "6.9×10⁻⁷"))
    prose, outputs = chapter_text(edited)
    assert check_entry(entry, prose, outputs) == [f"{entry['prose']!r} is not in the prose"]
    moved = {"prose": "reaches 6.9×10⁻⁷ at", "output": r"best (\S+) at"}
    assert check_entry(moved, prose, outputs) == ["the prose says '6.9×10⁻⁷' but the output says '5.93e-07'"]


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("5.9×10⁻⁷", [(5.9e-7, 1e-8)]),
        ("$5.9 \\times 10^{-7}$", [(5.9e-7, 1e-8)]),
        ("4.5e6", [(4.5e6, 1e5)]),
        ("0.134η", [(0.134, 1e-3)]),
        ("26%", [(0.26, 0.01)]),
        ("26.3\\%", [(0.263, 0.001)]),
        ("10⁻³ and 1,000 steps", [(1e-3, 1e-3), (1000.0, 1000.0)]),
        ("about 690 or 691 or 0", [(690.0, 10.0), (691.0, 1.0), (0.0, 1.0)]),
        ("−0.5 to 0.5", [(-0.5, 0.1), (0.5, 0.1)]),
        ("eq-2 fig-momentum-3 x1 ", []),
        ("between 0.1–0.3", [(0.1, 0.1), (0.3, 0.1)]),
    ],
)
def test_parse_numbers(text, numbers):
    parsed = [(value, quantum) for _, value, quantum in parse_numbers(text)]
    assert len(parsed) == len(numbers), parsed
    for (value, quantum), (want, want_quantum) in zip(parsed, numbers):
        assert math.isclose(value, want, rel_tol=1e-12) and math.isclose(quantum, want_quantum, rel_tol=1e-12)
