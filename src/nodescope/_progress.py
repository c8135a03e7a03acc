"""One progress display for the long steps of a command: a rich bar on a terminal, plain lines in a log.

A batch job's stdout is a file, where redrawn bars are noise and Lightning's bar printed nothing useful for the
whole run. :class:`Progress` shows the same information either way:

- ``"rich"`` (stdout is a terminal): one live bar per step -- description, bar, percentage, status (epoch, losses),
  elapsed time, ETA -- replaced by one closing line when the step ends;
- ``"lines"`` (stdout is not a terminal): a plain line when the caller marks a milestone (``line=True``, e.g. the end
  of an epoch) and at most every ``interval`` seconds in between, each with the ETA, then the same closing line;
- ``"off"``: nothing (``--quiet``, or no console).

Usage (the training callback :class:`nodescope.training.ProgressCallback` drives it from Lightning; the demo and
pretraining use it directly)::

    with Progress(console) as progress:
        progress.message("data: 150 synthetic patients")
        with progress.stage("fold 0 (1/5)"):
            with progress.task("training", total=10 * 38) as task:
                task.update(38, status="epoch 1/10  train_loss 0.693", line=True)

The display never changes what is computed, and the library never prints: a :class:`Progress` is handed in by the
command line (or any caller that wants one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal

from rich.console import Console

__all__ = ["Progress", "ProgressMode", "ProgressTask", "format_seconds"]

ProgressMode = Literal["auto", "rich", "lines", "off"]


def format_seconds(seconds: float | None) -> str:
    """``h:mm:ss`` (``"?"`` for None or a negative value)."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ProgressTask:
    """One long step of a :class:`Progress` (made by :meth:`Progress.task`).

    Attributes
    ----------
    description : str
        What runs (the stage label is prefixed).
    total : float or None
        Units of work (None: unknown, no ETA).
    completed : float
    status : str
        The latest status text (``"epoch 2/5  train_loss 0.68  val_loss 0.71"``).
    """

    def __init__(self, owner: Progress, description: str, total: float | None) -> None:
        self.owner, self.description, self.total = owner, description, total
        self.completed, self.status = 0.0, ""
        self.started = owner.clock()
        self._last_line = self.started
        self._rich_id: Any = None

    @property
    def elapsed(self) -> float:
        """Seconds since the task started."""
        return self.owner.clock() - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before any progress or without a total)."""
        if not self.total or self.completed <= 0:
            return None
        return self.elapsed * max(self.total - self.completed, 0.0) / self.completed

    def line(self) -> str:
        """The plain progress line: description, percentage, status, elapsed, ETA."""
        pct = f"{100 * self.completed / self.total:3.0f}%" if self.total else ""
        parts = [self.description, pct, self.status, f"elapsed {format_seconds(self.elapsed)}",
                 f"ETA {format_seconds(self.eta)}"]
        return "  ".join(p for p in parts if p)

    def update(self, completed: float | None = None, *, advance: float = 0.0, total: float | None = None,
               status: str | None = None, line: bool = False) -> None:
        """Record progress.

        Parameters
        ----------
        completed : float, optional
            Units done so far (else ``advance`` is added).
        advance : float, default 0
        total : float, optional
            A new total (e.g. once the number of batches is known).
        status : str, optional
            New status text.
        line : bool, default False
            A milestone: in ``"lines"`` mode print a line now (otherwise at most every ``interval`` seconds).
        """
        self.completed = completed if completed is not None else self.completed + advance
        if total is not None:
            self.total = total
        if status is not None:
            self.status = status
        self.owner._show(self, line)


class Progress:
    """The progress display of one command (see the module docstring).

    Parameters
    ----------
    console : rich.console.Console or None
        Where to draw; None shows nothing.
    mode : {"auto", "rich", "lines", "off"}, default "auto"
        ``auto``: ``rich`` when the console is a terminal, else ``lines``.
    interval : float, default 30
        ``lines`` mode: most seconds between two lines of a running task.
    clock : callable, default time.monotonic
        Seconds (injected by tests).
    """

    def __init__(self, console: Console | None = None, *, mode: ProgressMode = "auto", interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in ("auto", "rich", "lines", "off"):
            raise ValueError(f"mode: expected auto, rich, lines or off, got {mode!r}")
        if console is None:
            mode = "off"
        elif mode == "auto":
            mode = "rich" if console.is_terminal else "lines"
        self.console, self.mode, self.interval, self.clock = console, mode, float(interval), clock
        self.label = ""
        self._rich: Any = None

    def __enter__(self) -> Progress:
        if self.mode == "rich" and self._rich is None:
            from rich.progress import (
                BarColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                      TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(), console=self.console)
            self._rich.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def _print(self, text: str) -> None:
        if self.console is not None and self.mode != "off":
            target = self._rich.console if self._rich is not None else self.console
            target.print(text, markup=False, highlight=False, soft_wrap=True)

    def message(self, text: str) -> None:
        """A stage line (``data: 150 synthetic patients``), printed above the bars; nothing when ``off``."""
        self._print(f"{self.label}: {text}" if self.label else text)

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        """Label what runs inside the block (``fold 0 (1/5)``): tasks and messages are prefixed with it."""
        saved, self.label = self.label, label
        try:
            yield
        finally:
            self.label = saved

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        """One long step; its bar (or lines) lasts for the block and ends with one closing line.

        Parameters
        ----------
        description : str
            What runs; prefixed with the stage label.
        total : float, optional
            Units of work (for the percentage and the ETA).

        Yields
        ------
        ProgressTask
        """
        desc = f"{self.label} {description}".strip() if self.label else description
        task = ProgressTask(self, desc, total)
        if self._rich is not None:
            task._rich_id = self._rich.add_task(desc, total=total, status="")
        try:
            yield task
        finally:
            if self._rich is not None:
                self._rich.remove_task(task._rich_id)
            if self.mode != "off":
                done = "  ".join(p for p in (desc, "done", task.status,
                                             f"in {format_seconds(task.elapsed)}") if p)
                self._print(done)

    def _show(self, task: ProgressTask, line: bool) -> None:
        if self._rich is not None and task._rich_id is not None:
            self._rich.update(task._rich_id, completed=task.completed, total=task.total, status=task.status)
        elif self.mode == "lines":
            now = self.clock()
            if line or now - task._last_line >= self.interval:
                task._last_line = now
                self._print(task.line())
