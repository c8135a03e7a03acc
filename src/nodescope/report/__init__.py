"""Self-contained HTML reports (no CDN, figures embedded) built from run directories."""

from nodescope.report._html import HtmlReport, save_figure

__all__ = ["HtmlReport", "save_figure"]
