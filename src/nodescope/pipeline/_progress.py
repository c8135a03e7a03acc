"""The demo's progress lines: stage, model, fold, epoch and an estimated time to finish, all from one place.

Every line the demo shows while it works is made here (:class:`DemoProgress`), and the training side reaches it
through one Lightning progress-bar callback (:class:`EpochLines`, which also replaces Lightning's own tqdm bar), so
a shared progress API can take over by swapping this module.

The estimate counts work in *units*: one training epoch of one encoder over one fold's training images (an
intermediate-fusion epoch is three units: three encoders), with the data generation and the evaluation given fixed
weights in units. The seconds per unit are measured on the epochs done so far, so the estimate adapts to the
machine (and to other load on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning.pytorch.callbacks import ProgressBar

__all__ = ["DemoProgress", "EpochLines", "TrainingStage"]


@dataclass(frozen=True)
class TrainingStage:
    """One training run of the demo, as the estimate sees it.

    Attributes
    ----------
    name : str
        The model's name (``bmode``, ``fusion_intermediate``, ...).
    folds, epochs : int
        Fits in the run and epochs per fit.
    encoders : int
        Encoders trained at once (1; 3 for intermediate fusion): an epoch costs this many units.
    """

    name: str
    folds: int
    epochs: int
    encoders: int = 1

    @property
    def units(self) -> float:
        return float(self.folds * self.epochs * self.encoders)


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


class DemoProgress:
    """Plain progress lines with an estimate of the time left.

    Parameters
    ----------
    say : callable
        Receives each line (the CLI prints it; the library default logs it).
    stages : sequence of TrainingStage
        The training runs, in order.
    data_units, eval_units : float
        What generating the data and evaluating cost, in training units (rough, fixed weights).
    min_interval : float
        Seconds between two epoch lines of the same fit (the last epoch of a fit is always shown).
    clock : callable
        Monotonic clock (tests pass a fake one).
    """

    def __init__(self, say: Callable[[str], None], stages: Sequence[TrainingStage], *, data_units: float = 4.0,
                 eval_units: float = 10.0, min_interval: float = 5.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.say = say
        self.stages = {s.name: s for s in stages}
        self.total = data_units + sum(s.units for s in stages) + eval_units
        self.data_units, self.eval_units = data_units, eval_units
        self.min_interval = min_interval
        self.clock = clock
        self.start = clock()
        self.done = 0.0
        self.current: TrainingStage | None = None
        self.fit = 0
        self._last_line = -float("inf")

    def eta(self) -> str:
        """``"ETA 1 min 20 s"`` from the seconds per unit so far, or ``"ETA --"`` before the first unit is done."""
        if self.done <= 0:
            return "ETA --"
        per_unit = (self.clock() - self.start) / self.done
        return f"ETA {_duration(per_unit * (self.total - self.done))}"

    def stage(self, text: str) -> None:
        """Announce a stage (one line)."""
        self.say(f"{text} ({self.eta()})")

    def data_done(self) -> None:
        """Count the data generation as done."""
        self.done += self.data_units

    def training(self, name: str) -> None:
        """A training run of :attr:`stages` starts: its fits are counted as folds 1, 2, ..."""
        self.current = self.stages[name]
        self.fit = 0

    def fit_started(self) -> None:
        """A fit (one fold) of the current run starts."""
        self.fit += 1
        self._last_line = -float("inf")

    def epoch_done(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) of the current fit ended: count it; show a line at most every ``min_interval``."""
        st = self.current
        if st is None:
            return
        self.done += st.encoders
        now = self.clock()
        if epoch + 1 >= st.epochs or now - self._last_line >= self.min_interval:
            self._last_line = now
            self.say(f"  {st.name}: fold {min(self.fit, st.folds)}/{st.folds}, epoch {epoch + 1}/{st.epochs} "
                     f"({self.eta()})")

    def callback(self) -> EpochLines:
        """A Lightning callback reporting the current run's folds and epochs here."""
        return EpochLines(self)


class EpochLines(ProgressBar):
    """Lightning progress bar that reports fits and epochs to a :class:`DemoProgress` instead of drawing a bar."""

    def __init__(self, progress: DemoProgress) -> None:
        super().__init__()
        self.progress = progress
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._enabled:
            self.progress.fit_started()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._enabled:
            self.progress.epoch_done(int(trainer.current_epoch))
