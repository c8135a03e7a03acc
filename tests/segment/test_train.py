"""segment train: the fold runner with a segmentation task on tiny synthetic masks (a bright disc is the lesion)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_data import write_tiny_dataset

from nodescope.errors import ConfigError, OutputExistsError
from nodescope.segment import Segmenter
from nodescope.segment._masks_io import read_mask
from nodescope.segment._train import SegmentConfig, run_segment_cv

TINY_UNET = [4, 4, 8, 8, 16, 4]


def _cfg(tmp: Path, per_patient: int = 1, **kw: object) -> SegmentConfig:
    man = write_tiny_dataset(tmp / "data", n_patients=8, per_patient=per_patient, masks=True)
    base = {"manifest": man, "out": tmp / "run", "architecture": "monai_unet", "features": TINY_UNET,
            "image_size": 32, "epochs": 2, "batch_size": 4, "folds": 2, "val_fraction": 0.0, "lr": 3e-3,
            "augment": "light", "num_threads": 1}
    return SegmentConfig.build(**{**base, **kw})


def test_two_fold_run_writes_bundles_masks_and_scores(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    res = run_segment_cv(cfg)
    run = res.run_dir
    for k in (0, 1):
        assert (run / "folds" / f"fold_{k}" / "bundle" / "model.json").is_file()
    meta = json.loads((run / "final" / "bundle" / "model.json").read_text())
    assert meta["kind"] == "segmenter" and meta["architecture"]["name"] == "monai_unet"
    pred = pd.read_csv(run / "predictions.csv", dtype=str, keep_default_na=False)
    assert len(pred) == 8 and set(pred["split"]) == {"cv"} and sorted(set(pred["fold"])) == ["0", "1"]
    for rel, ref in zip(pred["pred_mask"], pred["mask"], strict=True):
        m = read_mask(run / rel)
        assert m.shape == read_mask(ref).shape  # saved at the original size (40 x 48), not the 32 px grid
    scores = pd.read_csv(run / "scores.csv")
    assert len(scores) == 8 and scores["dice"].between(0, 1).all()
    summ = json.loads((run / "summary.json").read_text())
    dice = next(r for r in summ["splits"]["cv"]["metrics"] if r["metric"] == "dice")
    assert dice["estimate"] == pytest.approx(scores["dice"].mean())  # from the saved masks
    seg = Segmenter([run / "final" / "bundle"])
    img = np.zeros((40, 48), np.uint8)
    assert seg.predict_mask(img).mask.shape == (40, 48)


@pytest.mark.slow
def test_learns_the_disc_with_validation_dice_early_stopping(tmp_path: Path) -> None:
    """Enough epochs on an easy task: out-of-fold Dice well above the empty-mask baseline (0)."""
    cfg = _cfg(tmp_path, per_patient=2, epochs=15, batch_size=2, lr=1e-2, val_fraction=0.25, patience=10,
               final_model="none", augment="none")  # seed 0: Dice 0.71 out of fold
    res = run_segment_cv(cfg)
    d = res.summary["splits"]["cv"]["metrics"][0]
    assert d["metric"] == "dice" and d["estimate"] > 0.5
    info = res.summary["folds"]["0"]
    assert info["best_val_dice"] is not None and info["n_val"] > 0
    assert not (res.run_dir / "final").exists()


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="architecture"):
        _cfg(tmp_path, architecture="vnet")
    cfg = _cfg(tmp_path)
    cfg.out.mkdir()
    (cfg.out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not empty"):
        run_segment_cv(cfg)
    assert (cfg.out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("arch", ["unet", "unetplusplus", "deeplabv3", "deeplabv3plus", "monai_unet"])
def test_each_architecture_takes_a_lightning_step(arch: str, tmp_path: Path) -> None:
    """SegmenterModule + Lightning: one training and one validation batch of tiny synthetic masks per architecture,
    with the paired augmentation on."""
    import lightning as L
    import torch

    from nodescope.segment import SegmenterModule, build_segmenter
    from nodescope.training import ImageDataModule, UltrasoundAugment

    torch.manual_seed(0)
    cfg = SegmentConfig.build(manifest=tmp_path / "m.csv", out=tmp_path / "r", architecture=arch, encoder="resnet18",
                              features=TINY_UNET, channels=3, image_size=32)
    net = build_segmenter(cfg.arch)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    module = SegmenterModule(net, (0.5,) * 3, (0.25,) * 3, augment=UltrasoundAugment(), lr=1e-3, max_epochs=1)
    x = torch.randint(0, 60, (4, 3, 32, 32), dtype=torch.uint8)
    m = torch.zeros(4, 1, 32, 32, dtype=torch.uint8)
    m[:, :, 8:20, 10:22] = 1
    x[m.expand(-1, 3, -1, -1) > 0] = 220
    dm = ImageDataModule(x, m, np.arange(4), np.arange(2), batch_size=2)
    trainer = L.Trainer(fast_dev_run=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=dm)
    assert "val_dice" in trainer.callback_metrics and 0 <= float(trainer.callback_metrics["val_dice"]) <= 1
    changed = [k for k, v in net.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed  # the step updated the weights
