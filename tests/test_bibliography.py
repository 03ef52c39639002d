"""references.bib parses, entry by entry, before the book build meets it (merges have cut closing braces)."""

from __future__ import annotations

import re
from pathlib import Path

import pybtex.database

BIB = Path(__file__).resolve().parents[1] / "references.bib"


def test_every_entry_parses_and_keys_are_unique():
    text = BIB.read_text(encoding="utf-8")
    keys = re.findall(r"^@\w+\{([^,\s]+),", text, flags=re.M)
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    entries = pybtex.database.parse_string(text, "bibtex").entries
    assert sorted(entries) == sorted(keys), "an entry swallowed the next one (a closing brace is missing)"
