"""bench/update_rows.py merges re-measured rows into BENCHMARKS.md's table: a row of
the same name is replaced, a new one goes at the end of the table, the rest of the
file stays."""
from __future__ import annotations

import pytest

from bench.update_rows import merge

DOC = """# nbemu benchmarks

| what | nbemu | reference | goal |
|---|---|---|---|
| a | 1 | x | <= 2 |
| b | 5 | y | <= 3 |

How: notes.

## Fuzzing
| b | its own table: not touched |
kept
"""


def test_rows_replaced_or_appended_and_the_rest_kept() -> None:
    out = merge(DOC, [("b", "2", "y2", "<= 3"), ("c", "7", "", "")], "re-measured: b, c")
    lines = out.splitlines()
    assert "| b | 2 | y2 | <= 3 |" in lines and "| b | 5 | y | <= 3 |" not in lines
    assert lines.index("| c | 7 |  |  |") == lines.index("| b | 2 | y2 | <= 3 |") + 1
    assert "| a | 1 | x | <= 2 |" in lines
    assert "re-measured: b, c" in lines
    assert out.endswith("## Fuzzing\n| b | its own table: not touched |\nkept\n"), out
    assert "How: notes." in lines


def test_a_file_without_a_table_is_refused() -> None:
    with pytest.raises(ValueError):
        merge("# nothing\n", [("a", "1", "", "")], "n")


def test_the_same_note_is_not_repeated() -> None:
    from bench.update_rows import merge
    text = "| what | v | r | g |\n|---|---|---|---|\n| a | 1 | | |\n\nolder note\n"
    once = merge(text, [("a", "2", "", "")], "note N")
    twice = merge(once, [("a", "3", "", "")], "note N")
    assert twice.count("note N") == 1 and "| a | 3 |" in twice and "older note" in twice
