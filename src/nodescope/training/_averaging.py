"""Weight averaging for training (``weight_averaging``: swa | ema), through Lightning's ``WeightAveraging`` callbacks.

- ``swa``: stochastic weight averaging (Izmailov et al., UAI 2018) -- the equal average of the weights at the end of
  each epoch of the last quarter of the schedule (epochs ``floor(0.75 E) .. E - 1``, at least the last one).
- ``ema``: exponential moving average of the weights after every optimizer step, ``decay`` per step
  (Lightning ``EMAWeightAveraging``).

Both average the buffers too (``use_buffers=True``: BatchNorm running statistics are averaged like the weights).
When training ends the averaged weights replace the network's, so the fold's bundle holds them; checkpoints carry
them in ``state_dict`` (the raw weights in ``current_model_state``), so ``--resume`` and best-checkpoint selection
see the averaged model.
"""

from __future__ import annotations

from typing import Any, Literal

from lightning.pytorch.callbacks import EMAWeightAveraging, WeightAveraging

__all__ = ["EpochSWA", "WeightAveragingKind", "weight_averaging_callback"]

WeightAveragingKind = Literal["none", "swa", "ema"]


class EpochSWA(WeightAveraging):
    """Equal average of the end-of-epoch weights from epoch ``start_epoch`` (zero-based) on."""

    def __init__(self, start_epoch: int) -> None:
        super().__init__(use_buffers=True)
        self.start_epoch = int(start_epoch)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """Update at the end of epochs ``>= start_epoch`` only (never after single steps)."""
        return epoch_idx is not None and epoch_idx >= self.start_epoch


def weight_averaging_callback(kind: WeightAveragingKind, *, epochs: int, ema_decay: float = 0.999) -> Any | None:
    """The Lightning callback for ``kind`` (``None`` for ``"none"``).

    Parameters
    ----------
    kind : {"none", "swa", "ema"}
    epochs : int
        Epochs of the schedule (SWA starts at ``floor(0.75 * epochs)``).
    ema_decay : float, default 0.999
        EMA decay per optimizer step.
    """
    if kind == "none":
        return None
    if kind == "swa":
        return EpochSWA(start_epoch=min(int(0.75 * epochs), epochs - 1))
    if kind == "ema":
        return EMAWeightAveraging(decay=float(ema_decay))
    raise ValueError(f"weight_averaging: expected 'none', 'swa' or 'ema', got {kind!r}")
