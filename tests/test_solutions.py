"""The code of the solutions runs, and the numbers their prose quotes are what it prints.

A solution's code is either executed with the chapter (the gated form, `solution-start` ... `solution-end`, whose
code cells nbval checks) or written as a Python block inside a collapsed `{solution}` in markdown, which no
notebook run executes. This test takes every such block, runs it the way a reader would (after the chapter's
code cells it depends on) and checks each number the solution quotes from it, registered in
`tests/solution_numbers/<chapter>.toml` like the prose numbers (see `tests/test_prose_numbers.py`):

    [[number]]
    solution = "ex-sgd-rotated"                       # the solution's label
    prose = "The best pair on the grid gives 0.9803"  # exact substring of the solution (its code included)
    output = 'best per-coordinate rate (\\S+)'         # regex over what the solution's blocks print

It also checks the rule that makes this sound: a solution that uses a name defined by a code cell of the chapter
(other than the imports every chapter starts with) says so in its text, `name` in code font, or defines it.

To keep the test fast, a block runs after only the chapter's code cells it needs: the import cells, and, going
backwards from the block, every cell that defines a name the block (or a cell already taken) needs.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from tests.test_prose_numbers import _normalize, check_entry

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = Path(__file__).resolve().parent / "solution_numbers"
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

# Blocks too slow to run here, label: reason (CONTRIBUTING.md, "Numbers in solutions"). Empty: every block runs.
NOT_RUN: dict[str, str] = {}

_SOLUTION = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{solution\}\s*(?P<label>\S+)(?P<body>.*?)\n(?P=fence)\s*$", re.S | re.M
)
_GATED = re.compile(r"\{solution-start\}\s*(?P<label>\S+)")
# a Python block, also as an item of a list ("2. ```python", the code indented under the item)
_BLOCK = re.compile(
    r"^(?P<lead>[ \t]*(?:(?:\d+\.|[-*+])[ \t]+)?)```python[^\n]*\n(?P<code>.*?)^[ \t]*```[ \t]*$", re.S | re.M
)
_BUILTINS = set(dir(builtins)) | {"display", "get_ipython", "__name__"}


@dataclass
class Solution:
    label: str
    prose: str  # the solution's markdown, code blocks included
    blocks: list[str]  # its Python code: markdown blocks, or the code cells of a gated solution
    cell: int  # index of the (first) cell of the solution
    gated: bool
    code_cells: list[int] = field(default_factory=list)


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def solutions(notebook: dict) -> list[Solution]:
    """Every solution of a chapter that has code, in order."""
    cells = notebook["cells"]
    found = []
    i = 0
    while i < len(cells):
        text = _source(cells[i])
        if cells[i]["cell_type"] == "markdown":
            for match in _SOLUTION.finditer(text):
                blocks = [
                    "\n".join(line[len(b["lead"]) :] for line in b["code"].split("\n"))
                    for b in _BLOCK.finditer(match["body"])
                ]
                if blocks:
                    found.append(Solution(match["label"], match[0], blocks, i, gated=False))
            gated = _GATED.search(text)
            if gated:  # its text: what follows the opening directive, and the markdown cells up to its end
                j, prose, blocks, code_cells = i + 1, [text[gated.start() :]], [], []
                while "solution-end" not in _source(cells[j]):
                    if cells[j]["cell_type"] == "code":
                        blocks.append(_source(cells[j]))
                        code_cells.append(j)
                    else:
                        prose.append(_source(cells[j]))
                    j += 1
                found.append(Solution(gated["label"], "\n".join(prose), blocks, i, True, code_cells))
                i = j
        i += 1
    return found


def _python(source: str) -> str:
    return TransformerManager().transform_cell(source)


def names(source: str) -> tuple[set[str], set[str]]:
    """(names a piece of code defines, names it uses without defining them)."""
    tree = ast.parse(_python(source))
    defined, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store | ast.Del) else used).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return defined, used - defined - _BUILTINS


def _is_setup(source: str) -> bool:
    """An import cell (the install cell and the imports every chapter starts with)."""
    tree = ast.parse(_python(source))
    return all(isinstance(n, ast.Import | ast.ImportFrom | ast.Try) for n in tree.body)


def _code_cells(notebook: dict) -> list[tuple[int, str]]:
    return [(i, _source(c)) for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code"]


def chapter_names(notebook: dict, solution: Solution) -> set[str]:
    """The names a solution uses that a code cell before it (not an import cell, not its own) defines."""
    defined, setup = set(), set()
    for i, source in _code_cells(notebook):
        if i < solution.cell:
            (setup if _is_setup(source) else defined).update(names(source)[0])
    defined -= setup
    used = set()
    own = set()
    for block in solution.blocks:
        block_defines, block_uses = names(block)
        used |= block_uses - own
        own |= block_defines
    return used & defined


def cells_needed(notebook: dict, solution: Solution) -> list[tuple[int, str]]:
    """The chapter's code cells a solution's blocks need, in order: the import cells, and the backward slice of
    the cells that define a name needed (a cell that only changes an object in place is not taken: should a
    block depend on one, its numbers differ from the prose's and the test fails, rather than passing wrongly)."""
    before = [(i, s) for i, s in _code_cells(notebook) if i < solution.cell]
    setup = [(i, s) for i, s in before if _is_setup(s)]
    setup_names = set().union(*(names(s)[0] for _, s in setup))
    needed = set().union(*(names(b)[1] for b in solution.blocks)) - setup_names
    taken = []
    for i, source in reversed(before):
        if (i, source) in setup:
            continue
        defines, uses = names(source)
        if needed & defines:
            taken.append((i, source))
            needed |= uses - setup_names
    return setup + sorted(taken)


def run_cells(sources: list[str], namespace: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for source in sources:
            exec(compile(_python(source), "<solution>", "exec"), namespace)
            plt.close("all")
    return printed.getvalue()


def _registry(chapter: Path) -> list[dict]:
    path = REGISTRY / f"{chapter.stem}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))["number"] if path.exists() else []


def _load(chapter: Path) -> dict:
    return json.loads(chapter.read_text(encoding="utf-8"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_solutions_say_which_chapter_names_they_use(chapter: Path):
    notebook = _load(chapter)
    problems = []
    for solution in solutions(notebook):
        prose = _BLOCK.sub("", solution.prose)
        silent = sorted(n for n in chapter_names(notebook, solution) if f"`{n}`" not in prose)
        if silent:
            problems.append(f"{solution.label} uses {silent} from the chapter without saying so")
    assert not problems, "\n".join(problems)


_WITH_BLOCKS = [chapter for chapter in CHAPTERS if any(not s.gated for s in solutions(_load(chapter)))]


@pytest.mark.parametrize("chapter", _WITH_BLOCKS, ids=lambda p: p.stem)
def test_solution_blocks_run_and_print_what_the_prose_says(chapter: Path):
    notebook = _load(chapter)
    entries = _registry(chapter)
    labels = {s.label for s in solutions(notebook)}
    problems = [
        f"registered solution {e['solution']!r} is not in the chapter" for e in entries if e["solution"] not in labels
    ]
    for solution in solutions(notebook):
        if solution.gated:
            continue
        if solution.label in NOT_RUN:
            assert not any(e["solution"] == solution.label for e in entries), f"{solution.label} is not run"
            continue
        namespace = {"__name__": "__main__"}
        run_cells([s for _, s in cells_needed(notebook, solution)], namespace)
        printed = run_cells(solution.blocks, namespace)
        prose = [_normalize(solution.prose)]
        mine = [e for e in entries if e["solution"] == solution.label]
        problems += [f"{solution.label}: {e['prose']!r}: {p}" for e in mine for p in check_entry(e, prose, printed)]
        if not mine and re.search(r"\d", printed):
            problems.append(f"{solution.label} prints numbers, but none of its prose is registered:\n{printed}")
    assert not problems, "\n".join(problems)


# The machinery itself, on a tiny chapter: a test that cannot fail proves nothing.


def _cell(kind: str, source: str) -> dict:
    return {"cell_type": kind, "source": [source], "metadata": {}, **({"outputs": []} if kind == "code" else {})}


_FAKE = {
    "cells": [
        _cell("code", "import numpy as np"),
        _cell("code", "scale = 2.0\nhelper = lambda x: scale * x"),
        _cell("code", "unrelated = sum(range(10**3))"),
        _cell(
            "markdown",
            "````{solution} ex-fake-said\n:class: dropdown\n\nThe code uses `helper` of the cell above.\n\n"
            '1. ```python\n   print(f"{helper(np.pi):.3f}")   # 6.283\n   ```\n````\n',
        ),
        _cell("markdown", "````{solution} ex-fake-silent\n:class: dropdown\n\n```python\nprint(scale)\n```\n````\n"),
        _cell(
            "markdown",
            "```{exercise} Uses `scale`\n:label: ex-fake-gated\n```\n\n```{solution-start} ex-fake-gated\n```",
        ),
        _cell("code", "print(scale + 1)"),
        _cell("markdown", "```{solution-end}\n```"),
    ]
}


def test_machinery_finds_blocks_in_lists_and_gated_solutions():
    found = {s.label: s for s in solutions(_FAKE)}
    assert sorted(found) == ["ex-fake-gated", "ex-fake-said", "ex-fake-silent"]
    assert found["ex-fake-said"].blocks == ['print(f"{helper(np.pi):.3f}")   # 6.283\n']
    assert found["ex-fake-gated"].gated and found["ex-fake-gated"].blocks == ["print(scale + 1)"]
    assert "Uses `scale`" not in found["ex-fake-gated"].prose  # the exercise's text is not the solution's


def test_machinery_names_what_a_solution_takes_from_the_chapter():
    found = {s.label: s for s in solutions(_FAKE)}
    assert chapter_names(_FAKE, found["ex-fake-said"]) == {"helper"}  # np comes from an import cell
    assert chapter_names(_FAKE, found["ex-fake-silent"]) == {"scale"}
    assert chapter_names(_FAKE, found["ex-fake-gated"]) == {"scale"}  # and says so only in the exercise
    assert [i for i, _ in cells_needed(_FAKE, found["ex-fake-said"])] == [0, 1]  # not the unrelated cell


def test_machinery_checks_the_printed_number():
    said = next(s for s in solutions(_FAKE) if s.label == "ex-fake-said")
    namespace = {}
    run_cells([s for _, s in cells_needed(_FAKE, said)], namespace)
    printed = run_cells(said.blocks, namespace)
    entry = {"solution": said.label, "prose": "# 6.283", "output": r"^(\S+)$"}
    assert printed == "6.283\n" and check_entry(entry, [_normalize(said.prose)], printed) == []
    wrong = [_normalize(said.prose.replace("6.283", "6.284"))]
    assert check_entry({**entry, "prose": "# 6.284"}, wrong, printed) == [
        "the prose says '6.284' but the output says '6.283'"
    ]
