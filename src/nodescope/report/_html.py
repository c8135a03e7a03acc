"""A small builder for self-contained HTML reports.

Every stage that writes a report (``evaluate``, ``meta``, ``demo``) uses :class:`HtmlReport`: paragraphs, tables
from :class:`pandas.DataFrame` and matplotlib figures embedded as base64 PNG, so the single ``report.html`` file opens
anywhere, offline, with nothing fetched from the network (no script, font, style sheet or image outside the file).

A report opens with its answer: :meth:`HtmlReport.summary` is an always-open block at the top,
:meth:`HtmlReport.contents` a table of contents, and each :meth:`HtmlReport.section` a folded ``<details>`` block.
The print style sheet unfolds every section (``details::details-content``: Chromium 131+ and any browser supporting
it), keeps figures and table rows whole on a page and fits figures to the page, so "Save as PDF" from a browser
gives the complete document.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from nodescope import __version__

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HtmlReport", "save_figure"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
     color:#1d2433;line-height:1.45;padding:0 1rem}
h1{border-bottom:2px solid #2b5797;padding-bottom:.3rem}
h2{color:#2b5797;margin-top:2rem;border-bottom:1px solid #d5dbe5}
h3{color:#33415c}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #d5dbe5;padding:.25rem .55rem;text-align:right}
th{background:#eef2f8}
td:first-child,th:first-child{text-align:left}
.banner{background:#fff4ce;border:1px solid #e0b400;padding:.6rem 1rem;border-radius:4px;margin:1rem 0}
.note{color:#5a6478;font-size:.88rem}
figure{margin:1rem 0}
figcaption{color:#5a6478;font-size:.88rem}
img{max-width:100%}
footer{margin-top:3rem;color:#7a8499;font-size:.8rem;border-top:1px solid #d5dbe5;padding-top:.5rem}
.table-wrap{overflow-x:auto;max-width:100%}
table.text td,table.text th{text-align:left}
section.summary{border:1px solid #b9c6dc;border-radius:6px;padding:.2rem 1rem .6rem;margin:1rem 0;background:#f8fafd}
section.summary h2{margin-top:.6rem}
section.summary table{margin:.4rem 0;font-size:.85rem}
section.summary th,section.summary td{padding:.18rem .5rem}
section.summary figure{margin:.4rem 0}
section.summary img{width:auto!important;max-width:100%;max-height:350px}
.answer{font-size:1.02rem;margin:.4rem 0}
.cols{display:flex;flex-wrap:wrap;gap:0 1.5rem;align-items:flex-start}
.cols>.col{flex:1 1 420px;min-width:0}
nav.toc{margin:1rem 0}
nav.toc ul{margin:.3rem 0;columns:2;column-gap:2rem;list-style:none;padding-left:1rem}
details.section{border-bottom:1px solid #d5dbe5}
details.section>summary{cursor:pointer;padding:.2rem 0}
details.section>summary h2{display:inline;border:none;margin:0;font-size:1.3rem}
details.section>summary::marker{color:#2b5797}
.anchor{scroll-margin-top:4rem}
@media print{
  @page{size:A4;margin:14mm 12mm}
  body{max-width:none;margin:0;padding:0;font-size:10pt;line-height:1.3}
  details::details-content{content-visibility:visible;display:block}
  details.section>summary{list-style:none;cursor:auto}
  details.section>summary::marker,details.section>summary::-webkit-details-marker{content:"";display:none}
  details.section>summary h2{display:block;font-size:14pt;margin-top:1rem;border-bottom:1px solid #d5dbe5}
  details.section{border:none}
  section.summary{background:none;break-inside:auto}
  img{width:calc(var(--w) * .75)!important;max-width:100%;max-height:235mm;object-fit:contain}
  figure,tr,.banner{break-inside:avoid}
  h2,h3,caption,figcaption{break-after:avoid}
  .table-wrap{overflow:visible}
  table{font-size:8pt;max-width:100%}
  th,td,section.summary th,section.summary td{overflow-wrap:break-word;padding:.12rem .3rem}
  section.summary table{font-size:7.5pt}
  section.summary table:not(.text) td{white-space:nowrap}
  thead{display:table-header-group}
  nav.toc ul{columns:1}
  .cols>.col{flex:1 1 0}
  details.section>summary{break-after:avoid;break-inside:avoid}
  .screen-only{display:none}
  a{color:inherit;text-decoration:none}
}
"""
_TOC_MARK = "<!--nodescope:contents-->"
_EMBED_DPI = 150  # figures are embedded at 1.36x their on-screen resolution, so they stay sharp on paper
_SCREEN_DPI = 110


def save_figure(fig: Figure, out_dir: str | Path, stem: str, *, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Save a matplotlib figure as ``<out_dir>/<stem>.<fmt>`` for each format.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save (it is not closed).
    out_dir : str or Path
        Folder to write into; created when missing.
    stem : str
        File name without extension.
    formats : tuple of str
        Formats understood by :meth:`matplotlib.figure.Figure.savefig`.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


class HtmlReport:
    """Build a single-file HTML report.

    Parameters
    ----------
    title : str
        The page title and top heading.
    banner : str, optional
        A highlighted notice shown under the title (for example "These data are synthetic").

    Examples
    --------
    >>> rep = HtmlReport("Evaluation")
    >>> rep.heading("Discrimination")
    >>> rep.paragraph("AUC 0.91 (0.87-0.94), DeLong.")
    >>> text = rep.render()
    """

    def __init__(self, title: str, *, banner: str | None = None) -> None:
        self.title = title
        self._parts: list[str] = []
        self._toc: list[tuple[str, str]] = []  # (anchor, title) of each section, in order
        self._open: str | None = None  # "summary" or "section" while one is being filled
        self._contents_title = "Contents"
        if banner:
            self.banner(banner)

    def _anchor(self, title: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        taken = {a for a, _ in self._toc} | {"summary", "contents"}
        anchor, n = base, 2
        while anchor in taken:
            anchor, n = f"{base}-{n}", n + 1
        return anchor

    @contextmanager
    def summary(self, title: str = "Summary") -> Iterator[None]:
        """Add an always-open block (the report's answer): what is added inside the ``with`` goes into it.

        Examples
        --------
        >>> rep = HtmlReport("Evaluation")
        >>> with rep.summary():
        ...     rep.paragraph("AUC 0.91 (0.87-0.94).")
        """
        if self._open is not None:
            raise RuntimeError(f"a summary cannot be opened inside a {self._open}")
        self._open = "summary"
        self._parts.append(f'<section class="summary" id="summary"><h2>{html.escape(title)}</h2>')
        try:
            yield
        finally:
            self._parts.append("</section>")
            self._open = None

    @contextmanager
    def section(self, title: str, *, folded: bool = True) -> Iterator[None]:
        """Add a section listed in the contents; ``folded`` sections start closed (``<details>``) on screen.

        Every section is unfolded in print. Headings added inside should be of level 3 or 4.
        """
        if self._open is not None:
            raise RuntimeError(f"a section cannot be opened inside a {self._open}")
        anchor = self._anchor(title)
        self._toc.append((anchor, title))
        self._open = "section"
        self._parts.append(f'<details class="section"{"" if folded else " open"}><summary><h2>'
                           f'{html.escape(title)}</h2></summary><div class="anchor" id="{anchor}"></div>')
        try:
            yield
        finally:
            self._parts.append("</details>")
            self._open = None

    @contextmanager
    def block(self, css_class: str) -> Iterator[None]:
        """Wrap what is added inside the ``with`` in a ``<div class="css_class">``.

        The style sheet knows ``cols`` (children side by side on a wide screen and on paper, one under the other on
        a narrow screen) and ``col`` (one such child).
        """
        self._parts.append(f'<div class="{html.escape(css_class)}">')
        try:
            yield
        finally:
            self._parts.append("</div>")

    def contents(self, title: str = "Contents") -> None:
        """Add the table of contents here: a link to every section (those added later included).

        On screen it says that sections unfold on a click (a line left out in print, where all are unfolded).
        """
        self._contents_title = title
        self._parts.append(_TOC_MARK)

    def _render_contents(self, body: str) -> str:
        items = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in self._toc)
        nav = (f'<nav class="toc" id="contents"><h2>{html.escape(self._contents_title)}</h2>'
               '<p class="note screen-only">Click a section to unfold it; printing unfolds every section.</p>'
               f"<ul>{items}</ul></nav>")
        return body.replace(_TOC_MARK, nav, 1)

    def heading(self, text: str, level: int = 2) -> None:
        """Add a section heading (``level`` 2 to 4)."""
        level = min(max(int(level), 2), 4)
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, *, css_class: str | None = None) -> None:
        """Add a paragraph of plain text (escaped)."""
        cls = f' class="{css_class}"' if css_class else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def banner(self, text: str) -> None:
        """Add a highlighted notice."""
        self._parts.append(f'<div class="banner">{html.escape(text)}</div>')

    def raw_html(self, fragment: str) -> None:
        """Add trusted HTML produced by nodescope itself (never user text)."""
        self._parts.append(fragment)

    def bullets(self, items: list[str]) -> None:
        """Add an unordered list of plain-text items."""
        lis = "".join(f"<li>{html.escape(i)}</li>" for i in items)
        self._parts.append(f"<ul>{lis}</ul>")

    def table(self, frame: pd.DataFrame, *, caption: str | None = None, float_format: str = "{:.3f}",
              index: bool = False, text: bool = False) -> None:
        """Add a table.

        Parameters
        ----------
        frame : pandas.DataFrame
            The data; floats are formatted with ``float_format``, missing values shown empty.
        caption : str, optional
            Text shown above the table.
        float_format : str
            A :meth:`str.format` pattern for floats.
        index : bool
            Whether to include the index as the first column.
        text : bool
            Align every column left (a table of sentences rather than numbers).
        """
        def fmt(value: object) -> str:
            if value is None or (isinstance(value, float) and value != value):
                return ""
            if isinstance(value, float):
                return float_format.format(value)
            return str(value)

        df = frame.reset_index() if index else frame
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
            for row in df.itertuples(index=False, name=None)
        )
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        cls = ' class="text"' if text else ""
        self._parts.append(f'<div class="table-wrap"><table{cls}>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
                           "</table></div>")

    def figure(self, fig: Figure, *, caption: str | None = None) -> None:
        """Embed a matplotlib figure as a base64 PNG (the figure is not closed).

        The PNG is rendered at 1.36 times the resolution it is shown at on screen and printed at 3/4 of its screen
        size (at most the page), so it stays sharp on paper with its text about the size of the tables'.
        """
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_EMBED_DPI, bbox_inches="tight")
        png = buf.getvalue()
        width = int.from_bytes(png[16:20], "big")  # IHDR width of the PNG just written
        data = base64.b64encode(png).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img alt="{html.escape(caption or "figure")}" '
                           f'style="--w:{round(width * _SCREEN_DPI / _EMBED_DPI)}px;width:var(--w)" '
                           f'src="data:image/png;base64,{data}"/>{cap}</figure>')

    def render(self) -> str:
        """Return the whole document as a string."""
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if self._open is not None:
            raise RuntimeError(f"the report is rendered while a {self._open} is still open")
        body = self._render_contents("\n".join(self._parts))
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>\n{body}\n"
            f"<footer>Generated by nodescope {html.escape(__version__)} on {stamp}. Every number above is computed "
            "from the saved input files listed in this report.</footer></body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report to ``path`` (UTF-8) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path
