"""The Lightning module for classification (single image or intermediate fusion)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nodescope.training._augment import UltrasoundAugment

__all__ = ["ClassifierModule", "channels_last", "predict_tensor"]


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of a network on uint8 batches.

    Parameters
    ----------
    net : torch.nn.Module
        :class:`~nodescope.models.ClassifierNet` or :class:`~nodescope.models.IntermediateFusionNet`.
    mean, std : sequence of float
        Per-channel normalisation (on the 0..1 scale).
    augment : UltrasoundAugment or None
    class_weights : sequence of float, optional
        Cross-entropy class weights (``imbalance="class_weights"``).
    optimizer : {"adamw", "adam"}; lr, weight_decay : float
    scheduler : {"cosine", "step", "none"}; step_size : int; gamma : float; max_epochs : int
    modality_dropout : float
        Fusion only: probability of hiding each modality of a training unit (at least one stays).
    mixup : float, default 0
        Mixup (Zhang et al., ICLR 2018) with ``lambda ~ Beta(mixup, mixup)`` per batch: the (augmented, normalised)
        batch is mixed with a shuffled copy of itself, ``lambda x_i + (1 - lambda) x_perm(i)``, and the loss is
        ``lambda CE(y_i) + (1 - lambda) CE(y_perm(i))``; 0 = off. Single-image models only.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], *,
                 augment: UltrasoundAugment | None = None, class_weights: Sequence[float] | None = None,
                 optimizer: str = "adamw", lr: float = 3e-4, weight_decay: float = 1e-4, scheduler: str = "cosine",
                 step_size: int = 10, gamma: float = 0.1, max_epochs: int = 30, modality_dropout: float = 0.0,
                 fusion: bool = False, mixup: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        cw = torch.tensor(list(class_weights), dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("class_weights", cw)
        self.augment = augment
        self.fusion = fusion
        self.mixup = float(mixup)
        self.hp = {"optimizer": optimizer, "lr": lr, "weight_decay": weight_decay, "scheduler": scheduler,
                   "step_size": step_size, "gamma": gamma, "max_epochs": max_epochs,
                   "modality_dropout": modality_dropout}

    # -- helpers --------------------------------------------------------------------------------------------------
    def _prep(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        x = x.float() / 255.0
        if train and self.augment is not None:
            if self.fusion:
                n, m = x.shape[:2]
                x = self.augment(x.flatten(0, 1)).view(n, m, *x.shape[2:])
            else:
                x = self.augment(x)
        if self.fusion:
            return (x - self.mean[:, None]) / self.std[:, None]
        return (x - self.mean) / self.std

    def _forward_batch(self, batch: Any, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fusion:
            x, present, y = batch
            if train and self.hp["modality_dropout"] > 0:
                drop = torch.rand(present.shape, device=present.device) < self.hp["modality_dropout"]
                keep = present & ~drop
                none_left = ~keep.any(1)
                keep[none_left] = present[none_left]
                present = keep
            return self.net(self._prep(x, train), present), y
        x, y = batch
        return self.net(self._prep(x, train)), y

    # -- Lightning hooks ------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        if self.fusion:
            return self.net(self._prep(x, False), present)
        return self.net(self._prep(x, False))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.mixup > 0 and not self.fusion:
            x, y = batch
            xp = self._prep(x, True)
            lam = float(torch.distributions.Beta(self.mixup, self.mixup).sample())
            perm = torch.randperm(len(y), device=xp.device)
            logits = self.net(lam * xp + (1 - lam) * xp[perm])
            loss = lam * F.cross_entropy(logits, y, weight=self.class_weights) + (1 - lam) * F.cross_entropy(
                logits, y[perm], weight=self.class_weights)
        else:
            logits, y = self._forward_batch(batch, True)
            loss = F.cross_entropy(logits, y, weight=self.class_weights)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        logits, y = self._forward_batch(batch, False)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("val_acc", acc, on_epoch=True, batch_size=len(y), sync_dist=True)

    def configure_optimizers(self) -> Any:
        hp = self.hp
        cls = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
        opt = cls(self.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        if hp["scheduler"] == "cosine":
            sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, hp["max_epochs"]))
        elif hp["scheduler"] == "step":
            sch = torch.optim.lr_scheduler.StepLR(opt, step_size=hp["step_size"], gamma=hp["gamma"])
        else:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sch, "interval": "epoch"}}


@contextmanager
def channels_last(module: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Hold the 4-D weights of ``module`` in channels-last layout inside the block, the default layout after it.

    Convolutions run faster in channels-last layout on CPUs (oneDNN) and on GPUs with mixed precision; measured on
    2 CPU cores, one training step of EfficientNet-Lite0 at 160 px took 0.41 s instead of 0.77 s and the fits of
    ``nodescope segment train`` ran 1.1-1.4x faster (docs/training.md, "Speed on CPU"). The values are the same tensors in another
    memory order, so results agree up to float rounding; the layout is restored on the way out (also when the block
    raises), so what is saved or scored afterwards is laid out as always. The parameters stay the same objects
    (an optimizer made inside the block keeps working).

    Parameters
    ----------
    module : torch.nn.Module
    enabled : bool, default True
        False: the block runs with the layout unchanged.
    """
    if not enabled:
        yield module
        return
    module.to(memory_format=torch.channels_last)
    try:
        yield module
    finally:
        module.to(memory_format=torch.contiguous_format)


@torch.inference_mode()
def predict_tensor(module: ClassifierModule, images: torch.Tensor, index: np.ndarray, *, batch_size: int = 64,
                   tta: bool = False, present: torch.Tensor | None = None) -> np.ndarray:
    """Softmax probabilities ``(len(index), K)`` of the module (eval mode, CPU or its device) for rows ``index``."""
    was_training = module.training
    module.eval()
    dev = module.mean.device
    outs = []
    for i in range(0, len(index), batch_size):
        j = torch.as_tensor(index[i:i + batch_size])
        x = images[j].to(dev)
        pr = present[j].to(dev) if present is not None else None
        p = torch.softmax(module(x, pr).float(), 1)
        if tta:
            p = (p + torch.softmax(module(x.flip(-1), pr).float(), 1)) / 2
        outs.append(p.cpu().numpy())
    module.train(was_training)
    k = next(int(m.out_features) for m in reversed(module.net.head) if isinstance(m, torch.nn.Linear))
    return np.concatenate(outs) if outs else np.zeros((0, k))
