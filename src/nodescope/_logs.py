"""Where Python logging and warnings go while a command runs: the console, a run's log file, or nowhere.

Third-party libraries announce themselves on every call (Lightning: ``GPU available: False``, ``TPU available``,
an advertisement for a cloud logger, ``Trainer.fit stopped``; deprecation warnings raised inside Lightning or
PyTorch). None of it is about the user's data, so :class:`LogCapture` keeps it off the console unless asked
(``verbose``) and writes it, with nodescope's own records, to the run's log file once one is attached
(:func:`attach_log_file`, called by the fold runner and pretraining when their output folder is ready; records
from before are buffered and written first).

It works through the libraries' own switches, for the duration of a ``with`` block only:

- one handler on the root logger. Lightning propagates its records to the root logger when the root has a handler
  (``lightning.pytorch`` and ``lightning.fabric`` add their own stderr handler at import only when it has none);
  the stderr handlers that ``lightning``, ``lightning.pytorch``, ``lightning.fabric`` and ``torchmetrics`` installed
  at an earlier import are set aside for the block (``propagate`` on), and restored on exit. PyTorch's own loggers
  (``torch.*``, configured by ``torch._logging``) are left as they are;
- ``warnings.catch_warnings`` with ``warnings.showwarning`` routed to the same handler (warnings raised by nodescope
  itself -- the filename is inside the package -- are shown on the console like nodescope's log warnings).

Console rules: nodescope's records at ``console_level`` and above (per-logger overrides in ``levels``, e.g.
``{"nodescope.meta": logging.INFO}`` for the meta-analysis' progress lines); everything else only when ``verbose``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

__all__ = ["THIRD_PARTY_LOGGERS", "LogCapture", "attach_log_file"]

#: Loggers that third-party libraries configure themselves at import time (handlers, ``propagate=False``).
THIRD_PARTY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric",
                       "torchmetrics")
#: Of those, the ones whose INFO records (Lightning's banners) are kept for the log file.
_INFO_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")

_PACKAGE = "nodescope"
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_ACTIVE: list[LogCapture] = []
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
#: Records kept while no file is attached (a command without a log file, a non-zero DDP rank); later ones are counted.
BUFFER_LIMIT = 10_000


def _ours(record: logging.LogRecord) -> bool:
    if record.name == "py.warnings":
        return str(getattr(record, "warning_filename", "")).startswith(_PACKAGE_DIR)
    return record.name == _PACKAGE or record.name.startswith(_PACKAGE + ".")


class _Router(logging.Handler):
    """Buffers every record until a file is attached (then writes them there) and echoes some to the console."""

    def __init__(self, capture: LogCapture) -> None:
        super().__init__(logging.DEBUG)
        self.capture = capture
        self.buffer: list[logging.LogRecord] = []
        self.dropped = 0
        self.file: logging.FileHandler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if not _ACTIVE or _ACTIVE[-1] is not self.capture:  # nested captures: the innermost one routes
            return
        if self.file is not None:
            self.file.handle(record)
        elif len(self.buffer) < BUFFER_LIMIT:
            self.buffer.append(record)
        else:
            self.dropped += 1
        if self.capture.on_console(record):
            self.capture.echo(record)

    def attach(self, path: Path) -> None:
        if self.file is not None:
            if Path(self.file.baseFilename) == path.resolve():
                return
            self.file.close()
        self.file = logging.FileHandler(path, mode="a", encoding="utf-8")
        self.file.setFormatter(_FORMAT)
        for record in self.buffer:
            self.file.handle(record)
        if self.dropped:
            self.file.handle(logging.LogRecord(_PACKAGE, logging.WARNING, __file__, 0, "%d earlier log records were "
                                               "not kept (more than %d before this file)", (self.dropped,
                                                                                            BUFFER_LIMIT), None))
        self.buffer.clear()
        self.dropped = 0

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        super().close()


def _plain_echo(record: logging.LogRecord) -> None:
    text = record.getMessage()
    if record.exc_info and record.levelno >= logging.ERROR:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    prefix = "" if record.levelno == logging.INFO else record.levelname.lower() + ": "
    sys.stderr.write(prefix + text + "\n")  # the CLI passes a rich console's printer instead


class LogCapture:
    """Route logging and warnings for the duration of a ``with`` block (see the module docstring).

    Parameters
    ----------
    verbose : bool, default False
        Also show third-party records and warnings (and nodescope's INFO records) on the console.
    console_level : int, default logging.WARNING
        Lowest level of nodescope's own records shown on the console (``logging.ERROR`` for ``--quiet``).
    levels : mapping of str to int, optional
        Per-logger console levels for nodescope loggers (``{"nodescope.meta": logging.INFO}``).
    echo : callable, optional
        ``echo(record)`` shows a record on the console; default: its message on stderr, prefixed with the level
        name for warnings and errors.

    Notes
    -----
    Everything at INFO and above (nodescope, Lightning) and every warning goes to the log file attached with
    :func:`attach_log_file`; nothing is written anywhere when no file is attached. Captures nest; the innermost
    gets the file.
    """

    def __init__(self, *, verbose: bool = False, console_level: int = logging.WARNING,
                 levels: Mapping[str, int] | None = None,
                 echo: Callable[[logging.LogRecord], None] | None = None) -> None:
        self.verbose = verbose
        self.console_level = logging.INFO if verbose else console_level
        self.levels = dict(levels or {})
        self.echo = echo or _plain_echo
        self._router = _Router(self)
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool, int]] = []
        self._warnings: Any = None

    def on_console(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is shown on the console (see the class docstring)."""
        if not _ours(record):
            return self.verbose
        level = self.console_level
        for name, lv in self.levels.items():
            if record.name == name or record.name.startswith(name + "."):
                level = min(level, lv)
        return record.levelno >= level

    @property
    def log_file(self) -> Path | None:
        """The attached log file, if any."""
        f = self._router.file
        return Path(f.baseFilename) if f is not None else None

    def attach(self, path: str | Path) -> Path:
        """Write the buffered records and all later ones to ``path`` (appended to when it exists).

        Returns
        -------
        Path
            ``path``.
        """
        p = Path(path)
        self._router.attach(p)
        return p

    def _showwarning(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                     file: TextIO | None = None, line: str | None = None) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
        record = logging.LogRecord("py.warnings", logging.WARNING, filename, lineno, text, None, None)
        record.warning_filename = filename  # type: ignore[attr-defined]
        if _ours(record):  # nodescope's own warnings: the message alone, as its log warnings
            record.msg = str(message)
        self._router.handle(record)

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        for name in THIRD_PARTY_LOGGERS:
            lg = logging.getLogger(name)
            self._saved.append((lg, list(lg.handlers), lg.propagate, lg.level))
            for h in list(lg.handlers):
                lg.removeHandler(h)
            lg.propagate = True
            if name in _INFO_LOGGERS:
                lg.setLevel(logging.INFO)
        pkg = logging.getLogger(_PACKAGE)
        self._saved.append((pkg, [], pkg.propagate, pkg.level))
        pkg.setLevel(logging.DEBUG if self.verbose else logging.INFO)
        root.addHandler(self._router)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.showwarning = self._showwarning
        _ACTIVE.append(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        deliberate = isinstance(exc, (KeyboardInterrupt, SystemExit)) or hasattr(exc, "exit_code")  # typer.Exit
        if exc is not None and not deliberate and self.log_file is not None:
            # the traceback belongs in the run's log, whatever the console shows
            self._router.file.handle(logging.LogRecord(  # type: ignore[union-attr]
                _PACKAGE, logging.ERROR, __file__, 0, "the run stopped with an exception", None,
                (exc_type, exc, tb)))  # type: ignore[arg-type]
        _ACTIVE.remove(self)
        self._warnings.__exit__(None, None, None)
        logging.getLogger().removeHandler(self._router)
        for lg, handlers, propagate, level in reversed(self._saved):
            for h in handlers:
                lg.addHandler(h)
            lg.propagate = propagate
            lg.setLevel(level)
        self._saved.clear()
        self._router.close()


def attach_log_file(path: str | Path) -> Path | None:
    """Give the innermost active :class:`LogCapture` its log file (``nodescope train``'s ``RUN/train.log``).

    Library code calls this once its output folder exists; without an active capture (the library used from
    Python) it does nothing, and logging is the caller's to configure.

    Parameters
    ----------
    path : str or Path
        The log file; appended to when it exists (a resumed run continues its log).

    Returns
    -------
    Path or None
        ``path``, or None without an active capture.
    """
    if not _ACTIVE:
        return None
    return _ACTIVE[-1].attach(path)
