"""Run every ```python block of the "## Meta-analysis" section of docs/r-equivalents.md (each stand-alone; their
asserts hold the R values of tests/meta/reference/meta_reference.R and meta_results15.R)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "r-equivalents.md"


def _meta_blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    head = re.search(r"^## Meta-analysis[ \t]*$", text, flags=re.M)
    assert head is not None, f"{PAGE} has no '## Meta-analysis' section"
    nxt = re.search(r"^## ", text[head.end():], flags=re.M)
    section = text[head.end(): head.end() + nxt.start() if nxt else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


BLOCKS = _meta_blocks()


def test_section_has_blocks() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_block_runs(i: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[i], f"{PAGE.name}[meta block {i}]", "exec"), {"__name__": "__r_equivalents__"})
