"""A Lightning callback that drives a :class:`nodescope._progress.Progress`: epoch e/E, losses, validation, ETA.

It replaces Lightning's own progress bar (``Trainer(enable_progress_bar=False)``), whose ``v_num`` meant nothing to
a user and which printed nothing useful when stdout was a file. One task per ``trainer.fit``, in units of training
batches (``max_epochs x batches per epoch``, so the ETA covers the whole fit; early stopping only shortens it),
with a status line ``epoch 2/5  train_loss 0.683  val_loss 0.796  val_acc 0.500`` and a line (in the plain mode)
at the end of every epoch. Only the global rank 0 reports.
"""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.callbacks import Callback

from nodescope._progress import Progress, ProgressTask

__all__ = ["ProgressCallback"]

#: Logged metrics shown in the status, in this order, when present.
SHOWN_METRICS = ("train_loss", "val_loss", "val_acc", "val_dice")


class ProgressCallback(Callback):
    """Report a Lightning fit to a :class:`~nodescope._progress.Progress`.

    Parameters
    ----------
    progress : Progress
        The display (its stage label, e.g. ``fold 0 (1/5)``, prefixes the task).
    description : str, default "training"
        The task's description.
    """

    def __init__(self, progress: Progress, description: str = "training") -> None:
        super().__init__()
        self.progress = progress
        self.description = description
        self._cm: Any = None
        self._task: ProgressTask | None = None
        self._per_epoch = 0

    def _status(self, trainer: Any) -> str:
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for name in SHOWN_METRICS:
            value = trainer.callback_metrics.get(name)
            if value is not None and math.isfinite(float(value)):
                parts.append(f"{name} {float(value):.3f}")
        return "  ".join(parts)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Open the task."""
        if not trainer.is_global_zero:
            return
        n = trainer.num_training_batches
        self._per_epoch = int(n) if math.isfinite(n) else 0
        total = self._per_epoch * trainer.max_epochs if self._per_epoch and trainer.max_epochs > 0 else None
        self._cm = self.progress.task(self.description, total)
        self._task = self._cm.__enter__()
        self._task.update(trainer.current_epoch * self._per_epoch, status=self._status(trainer))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Advance by one batch."""
        if self._task is not None:
            self._task.update(trainer.current_epoch * self._per_epoch + batch_idx + 1,
                              status=self._status(trainer))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """The epoch's losses and validation metric (validation runs before this hook); a line in plain mode."""
        if self._task is not None:
            self._task.update((trainer.current_epoch + 1) * self._per_epoch, status=self._status(trainer),
                              line=True)

    def _close(self) -> None:
        if self._cm is not None:
            cm, self._cm, self._task = self._cm, None, None
            cm.__exit__(None, None, None)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Close the task (one closing line)."""
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Close the task when the fit fails or is interrupted."""
        self._close()
