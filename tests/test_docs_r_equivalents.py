"""Every ```python block of docs/r-equivalents.md runs on its own (fresh namespace, repository root as working
directory) and passes the checks it makes against the R numbers quoted beside it.

The blocks are collected from the whole page, so sections other helpers append (meta-analysis) run too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "r-equivalents.md"


def _blocks() -> list[tuple[str, str]]:
    """(section heading, code) for each python block, in page order (headings read outside code fences only)."""
    out: list[tuple[str, str]] = []
    heading, fence, code = "top", None, []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if fence is None:
            if line.startswith("```"):
                fence, code = line[3:].strip(), []
            elif re.match(r"#+ ", line):
                heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            if fence.startswith("python"):
                out.append((heading, "\n".join(code) + "\n"))
            fence = None
        else:
            code.append(line)
    return out


BLOCKS = _blocks()


def test_page_has_blocks_for_every_r_package() -> None:
    sections = " ".join(h for h, _ in BLOCKS)
    for name in ("pROC", "rms", "prop.test", "ResourceSelection", "dcurves", "mcnemar.test", "MRMCaov", "Meta-analysis"):
        assert name in sections, f"no python block under a heading naming {name}"


@pytest.mark.parametrize(("heading", "code"), BLOCKS, ids=[f"{i}-{h[:40]}" for i, (h, _) in enumerate(BLOCKS)])
def test_block_runs(heading: str, code: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "__r_equivalents__"}
    exec(compile(code, f"{PAGE.name} [{heading}]", "exec"), namespace)  # the page is ours, checked in
