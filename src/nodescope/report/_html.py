"""A small builder for self-contained HTML reports.

Every stage that writes a report (``evaluate``, ``meta``, ``demo``) uses :class:`HtmlReport`: sections, paragraphs,
tables from :class:`pandas.DataFrame` and matplotlib figures embedded as base64 PNG, so the single ``report.html``
file opens anywhere, offline, with nothing fetched from the network.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
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
"""


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
        if banner:
            self.banner(banner)

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
              index: bool = False) -> None:
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
        self._parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")

    def figure(self, fig: Figure, *, caption: str | None = None) -> None:
        """Embed a matplotlib figure as a base64 PNG (the figure is not closed)."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img alt="{html.escape(caption or "figure")}" '
                           f'src="data:image/png;base64,{data}"/>{cap}</figure>')

    def render(self) -> str:
        """Return the whole document as a string."""
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join(self._parts)
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
