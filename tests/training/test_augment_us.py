"""Ultrasound augmentation extras (depth, TGC, blur, calipers) and mixup, each on inputs with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from nodescope.errors import ConfigError
from nodescope.training import TrainConfig
from nodescope.training._augment import UltrasoundAugment, _gaussian_blur
from nodescope.training._module import ClassifierModule

# every standard step off: only the extra under test acts
NONE = {"hflip": 0.0, "rotate": 0.0, "scale": (1.0, 1.0), "translate": 0.0, "brightness": 0.0, "contrast": 0.0,
        "gamma": (1.0, 1.0), "speckle": 0.0}


def test_identity_without_steps() -> None:
    x = torch.rand(3, 1, 16, 16) * 0.9
    torch.testing.assert_close(UltrasoundAugment(**NONE)(x), x, atol=1e-6, rtol=0)


def test_tgc_is_a_smooth_gain_of_depth() -> None:
    torch.manual_seed(1)
    x = torch.full((4, 1, 20, 12), 0.3)
    out = UltrasoundAugment(**NONE, tgc=0.5)(x)
    ratio = (out / x)[:, 0]
    assert torch.allclose(ratio, ratio[:, :, :1].expand_as(ratio))  # one gain per row
    t = np.linspace(-1, 1, 20)
    for i in range(4):  # log-gain = a t + b (t^2 - 1/3) with |a|, |b| <= 0.5
        coef = np.polyfit(t, np.log(ratio[i, :, 0].double().numpy()), 2)
        assert np.abs(np.polyval(coef, t) - np.log(ratio[i, :, 0].numpy())).max() < 1e-5
        b, a = coef[0], coef[1]
        assert abs(a) <= 0.5 + 1e-6 and abs(b) <= 0.5 + 1e-6 and abs(coef[2] + b / 3) < 1e-5


def test_blur_matches_scipy() -> None:
    x = torch.rand(2, 3, 15, 17)
    out = _gaussian_blur(x, torch.tensor([1.0, 0.0]))
    ref = ndimage.gaussian_filter1d(x[0].numpy(), 1.0, axis=-1, mode="mirror", truncate=3.0)
    ref = ndimage.gaussian_filter1d(ref, 1.0, axis=-2, mode="mirror", truncate=3.0)
    np.testing.assert_allclose(out[0].numpy(), ref, atol=1e-5)
    torch.testing.assert_close(out[1], x[1])  # sigma 0: unchanged


def test_depth_zooms_from_the_top_edge() -> None:
    torch.manual_seed(2)
    h = 40
    ramp = (torch.arange(h, dtype=torch.float32) / h).view(1, 1, h, 1).expand(2, 1, h, 8).contiguous()
    out = UltrasoundAugment(**NONE, depth=0.5)(ramp)[:, 0, :, 0] * h  # value = source row sampled
    j = np.arange(1, h)
    for i in range(2):
        # output row j samples source row ((2j + 1) / z - 1) / 2: linear in j, slope 1 / z, z in [1, 1.5]
        slope, icpt = np.polyfit(j, out[i, 1:].numpy(), 1)
        z = 1 / slope
        assert 1.0 <= z <= 1.5 + 1e-4 and icpt == pytest.approx((1 / z - 1) / 2, abs=1e-4)


def test_calipers_burn_bright_marks_only() -> None:
    torch.manual_seed(3)
    x = torch.rand(5, 1, 32, 32) * 0.5
    out = UltrasoundAugment(**NONE, calipers=1.0)(x)
    changed = out != x
    assert changed.flatten(1).any(1).all()  # every image marked
    assert (out[changed] == 1.0).all() and changed.float().mean() < 0.05
    assert torch.equal(UltrasoundAugment(**NONE, calipers=0.0)(x), x)
    with pytest.raises(ConfigError, match="calipers"):
        UltrasoundAugment(calipers=2.0)
    with pytest.raises(ValueError, match="augment is 'none'"):
        TrainConfig(manifest="m.csv", out="o", augment="none", aug_tgc=0.2)


def test_mixup_loss_is_the_mixed_cross_entropy() -> None:
    torch.manual_seed(4)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    mod = ClassifierModule(net, [0.5], [0.25], mixup=0.4)
    mod.log = lambda *a, **k: None  # type: ignore[method-assign]
    x = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    torch.manual_seed(5)
    loss = mod.training_step((x, y), 0)
    torch.manual_seed(5)
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(6)
    xp = (x.float() / 255 - 0.5) / 0.25
    logits = net(lam * xp + (1 - lam) * xp[perm])
    expect = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    torch.testing.assert_close(loss, expect)
    assert 0 < lam < 1


def test_site_balanced_sampling_equalises_site_class_cells() -> None:
    from nodescope.errors import DataError
    from nodescope.training import ImageDataModule
    from nodescope.training._classify import site_cells

    frame = pd.DataFrame({"site": ["A"] * 10 + ["B"] * 4, "label": ["benign"] * 7 + ["malignant"] * 3 +
                          ["benign", "malignant", "malignant", "malignant"]})
    train = np.arange(14)
    keys = site_cells(frame, train)
    assert keys[0] == "A|benign" and keys[-1] == "B|malignant"
    y = torch.tensor((frame["label"] == "malignant").to_numpy(int))
    dm = ImageDataModule(torch.zeros(14, 1, 2, 2, dtype=torch.uint8), y, train, None, oversample=True,
                         balance_by=keys, seed=0)
    cells = pd.Series(keys[dm.train_index]).value_counts()
    assert set(cells.index) == {"A|benign", "A|malignant", "B|benign", "B|malignant"}
    assert (cells == 7).all()  # every cell drawn up to the largest (A|benign, 7); originals all kept
    assert set(dm.train_index) == set(train)
    with pytest.raises(DataError, match="at least 2"):
        site_cells(frame, np.arange(10))  # training rows from site A only
    with pytest.raises(DataError, match="no 'site' column"):
        site_cells(frame.drop(columns="site"), train)
