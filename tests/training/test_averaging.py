"""Weight averaging: SWA ends with the mean of the last quarter's epoch weights; EMA follows its decay."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nodescope.training._averaging import EpochSWA, weight_averaging_callback


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        return ((self.net(x)[:, 0] - y) ** 2).mean()

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Record(L.Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        self.weights.append(pl_module.net.weight.detach().clone())


def fit(callback: L.Callback, epochs: int, tmp_path) -> tuple[Tiny, Record]:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    x = torch.randn(16, 3)
    data = DataLoader(TensorDataset(x, x @ torch.tensor([1.0, -2.0, 0.5])), batch_size=4)
    model, rec = Tiny(), Record()
    L.Trainer(max_epochs=epochs, callbacks=[rec, callback], accelerator="cpu", logger=False,
              enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
              default_root_dir=tmp_path).fit(model, data)
    return model, rec


def test_swa_is_the_mean_of_the_last_quarter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cb = weight_averaging_callback("swa", epochs=8)
    assert isinstance(cb, EpochSWA) and cb.start_epoch == 6
    model, rec = fit(cb, 8, tmp_path)
    torch.testing.assert_close(model.net.weight, torch.stack(rec.weights[6:]).mean(0))
    assert not torch.allclose(model.net.weight, rec.weights[-1])  # not simply the last epoch
    assert weight_averaging_callback("swa", epochs=1).start_epoch == 0  # type: ignore[union-attr]
    assert weight_averaging_callback("none", epochs=5) is None
    with pytest.raises(ValueError, match="weight_averaging"):
        weight_averaging_callback("polyak", epochs=5)  # type: ignore[arg-type]


def test_ema_differs_from_the_last_weights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, rec = fit(weight_averaging_callback("ema", epochs=3, ema_decay=0.5), 3, tmp_path)
    # decay 0.5 per step over 12 steps: close to, but not equal to, the last weights
    assert not torch.allclose(model.net.weight, rec.weights[-1])
    assert torch.allclose(model.net.weight, rec.weights[-1], atol=0.1)
