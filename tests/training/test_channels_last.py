"""Channels-last training: the layout holds inside the fit only, the values and the saved weights are unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_data import write_tiny_dataset

from nodescope.training import TrainConfig, channels_last, run_cv

FAST = {"recipe": "none", "backbone": "resnet18", "image_size": 32, "epochs": 1, "folds": 2, "batch_size": 8,
        "num_threads": 1, "accelerator": "cpu", "hidden": 16, "augment": "light", "final_model": "none"}


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 4, 3), torch.nn.Flatten(), torch.nn.Linear(256, 2))


def _layouts(net: torch.nn.Module) -> list[bool]:
    """For every 4-D parameter: is it stored channels-last? (A 1 x 1 kernel is both layouts at once.)"""
    return [p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters() if p.ndim == 4]


@pytest.fixture
def fit_layouts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the network's weights were channels-last when each ``Trainer.fit`` began, in order."""
    seen: list[bool] = []
    fit = L.Trainer.fit

    def spy(self: L.Trainer, model: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(all(_layouts(model.net)))
        return fit(self, model, *args, **kwargs)

    monkeypatch.setattr(L.Trainer, "fit", spy)
    return seen


def test_layout_inside_the_block_only_and_the_same_values() -> None:
    net = _net()
    x = torch.rand(2, 3, 12, 12)
    ref = net(x).detach()
    params = list(net.parameters())
    with channels_last(net) as inside:
        assert inside is net
        assert _layouts(net) == [True, True]
        np.testing.assert_allclose(net(x).detach().numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    assert _layouts(net) == [False, False]
    assert all(p.is_contiguous() for p in net.parameters())
    assert all(a is b for a, b in zip(params, net.parameters(), strict=True))  # an optimizer's references hold


def test_layout_restored_when_the_block_raises_and_untouched_when_off() -> None:
    net = _net()
    with pytest.raises(RuntimeError, match="stop"), channels_last(net):
        raise RuntimeError("stop")
    assert _layouts(net) == [False, False]
    with channels_last(net, enabled=False):
        assert _layouts(net) == [False, False]


@pytest.mark.parametrize("enabled", [True, False])
def test_training_runs_in_the_layout_and_saves_plain_weights(tmp_path: Path, fit_layouts: list[bool],
                                                             enabled: bool) -> None:
    manifest = write_tiny_dataset(tmp_path / "data", n_patients=12)
    cfg = TrainConfig(manifest=manifest, out=tmp_path / "run", channels_last=enabled, **FAST)
    run_cv(cfg)
    assert fit_layouts == [enabled, enabled]  # one fit per fold
    assert f"channels_last: {str(enabled).lower()}" in (tmp_path / "run" / "config.yaml").read_text()
    weights = load_file(tmp_path / "run" / "folds" / "fold_0" / "bundle" / "weights.safetensors")
    assert all(t.is_contiguous() for t in weights.values())


def test_segmenter_training_runs_in_the_layout(tmp_path: Path, fit_layouts: list[bool]) -> None:
    from nodescope.segment._train import SegmentConfig, run_segment_cv

    man = write_tiny_dataset(tmp_path / "data", n_patients=6, per_patient=1, masks=True)
    cfg = SegmentConfig.build(manifest=man, out=tmp_path / "run", architecture="monai_unet",
                              features=[4, 4, 8, 8, 16, 4], image_size=32, epochs=1, batch_size=4, folds=2,
                              val_fraction=0.0, augment="light", num_threads=1, final_model="none")
    run_segment_cv(cfg)
    assert fit_layouts == [True, True]
    weights = load_file(tmp_path / "run" / "folds" / "fold_0" / "bundle" / "weights.safetensors")
    assert all(t.is_contiguous() for t in weights.values())
