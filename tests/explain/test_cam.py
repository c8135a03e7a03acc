"""CamExplainer: every backbone family, every method, hooks released, maps on the original pixels, fusion per
modality, and a constructed network whose class evidence is a known region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nodescope.errors import BundleError, ConfigError
from nodescope.explain import METHODS, CamExplainer, cam_layer, overlay_heatmap
from nodescope.models import (
    BundleMeta,
    ClassifierNet,
    InputSpec,
    IntermediateFusionNet,
    ModelBundle,
    Predictor,
    Threshold,
)

pytest.importorskip("pytorch_grad_cam")

CLASSES = ("benign", "malignant")


def _bundle(net: nn.Module, backbone: str, size: int, *, kind: str = "classifier", roi: str = "none",
            threshold: float | None = None, channels: int = 1, arch: dict | None = None) -> ModelBundle:
    meta = BundleMeta(
        kind=kind, name="t",
        architecture=arch or {"backbone": backbone, "num_classes": 2, "in_chans": channels, "image_size": size,
                              "hidden": 8},
        classes=CLASSES, positive_class="malignant",
        input=InputSpec(image_size=size, channels=channels, mean=(0.5,) * channels, std=(0.25,) * channels,
                        roi=roi),  # type: ignore[arg-type]
        threshold=Threshold(threshold, "youden", "cv", "p_malignant >= value") if threshold is not None else None)
    return ModelBundle(Path("mem"), meta, net.eval())


def _hooks(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in net.modules())


# backbone -> the smallest input whose last feature map is at least 2 x 2 (a 1 x 1 map has no spatial content)
FAMILIES = {
    "resnet18": 64, "densenet121": 64, "inception_v3": 107, "inception_resnet_v2": 107, "convnext_tiny": 64,
    "efficientnet_b0": 64, "tf_efficientnet_lite0": 64, "mobilenetv3_large_100": 64,
    "vit_small_patch16_224": 48, "swin_tiny": 64,
}


@pytest.mark.parametrize("backbone", list(FAMILIES))
def test_every_family_maps_the_original_image_and_releases_its_hooks(backbone: str, rng) -> None:
    size = FAMILIES[backbone]
    torch.manual_seed(0)
    net = ClassifierNet(backbone, 2, in_chans=1, image_size=size, hidden=8)
    b = _bundle(net, backbone, size)
    image = rng.integers(0, 256, (size + 9, size - 7), dtype=np.uint8)  # not square: padding on both sides
    assert _hooks(net) == 0
    with CamExplainer(b, method="gradcam") as cam:
        res = cam.explain(image)
        assert cam.n_hooks == 2  # activation + gradient hook on the one target layer
        assert _hooks(net) == 2
    assert cam.n_hooks == 0 and _hooks(net) == 0
    assert all(p.grad is None for p in net.parameters())
    assert res.heatmap.shape == image.shape and res.heatmap.dtype == np.float32
    assert res.heatmap.min() == 0.0 and res.heatmap.max() == pytest.approx(1.0)
    assert res.cam.shape == (size, size)
    assert res.target in (0, 1) and res.target_class == CLASSES[res.target]
    assert res.probabilities.shape == (2,) and res.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(RuntimeError, match="closed"):
        cam.explain(image)


def test_transformer_layers_use_the_patch_grid() -> None:
    vit = ClassifierNet("vit_small_patch16_224", 2, in_chans=1, image_size=48, hidden=8).backbone
    layer = cam_layer(vit, "vit_small_patch16_224")
    assert layer.grid == (3, 3) and layer.name == "blocks.11.norm1"
    tokens = torch.arange(2 * 10 * 4, dtype=torch.float32).view(2, 10, 4)  # class token + 3 x 3 patches
    maps = layer.reshape(tokens)  # type: ignore[misc]
    assert maps.shape == (2, 4, 3, 3)
    # patch (row 1, col 2) is token 1 + 1 * 3 + 2 = 6
    assert torch.equal(maps[1, :, 1, 2], tokens[1, 6])
    swin = ClassifierNet("swin_tiny", 2, in_chans=1, image_size=64, hidden=8).backbone
    layer = cam_layer(swin, "swin_tiny")
    assert layer.grid == (2, 2) and layer.name.endswith("norm2")
    with pytest.raises(ValueError, match="patch grid"):
        layer.reshape(torch.zeros(1, 5, 8))  # type: ignore[misc]


@pytest.mark.parametrize("method", METHODS)
def test_every_method(method: str, rng, capfd) -> None:
    torch.manual_seed(0)
    net = ClassifierNet("resnet18", 2, in_chans=1, image_size=64, hidden=8)
    with CamExplainer(_bundle(net, "resnet18", 64), method=method, score_batch_size=128) as cam:
        res = cam.explain(rng.integers(0, 256, (50, 70), dtype=np.uint8), target="benign")
    assert capfd.readouterr().err == ""  # Score-CAM's progress bar is silenced: library code writes nothing
    assert res.method == method and res.target == 0
    assert res.heatmap.shape == (50, 70) and 0 <= res.heatmap.min() and res.heatmap.max() <= 1
    assert _hooks(net) == 0


def test_training_flags_restored_and_bad_arguments() -> None:
    net = ClassifierNet("resnet18", 2, in_chans=1, image_size=64, hidden=8)
    b = _bundle(net, "resnet18", 64)
    image = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    with torch.no_grad():
        p_eval = torch.softmax(net.eval()((b.spec.prepare(image)[0][None].float() / 255 - 0.5) / 0.25), 1)[0]
    net.train()  # the caller's choice: put back after the explainer (which runs the network in eval mode)
    with CamExplainer(b) as cam:
        res = cam.explain(image)
        assert not net.training
    np.testing.assert_allclose(res.probabilities, p_eval.numpy(), atol=1e-6)  # no dropout, running BN statistics
    assert net.training and all(m.training for m in net.modules())
    with pytest.raises(ConfigError, match="Did you mean 'gradcam'"):
        CamExplainer(b, method="gradcma")
    with CamExplainer(b) as cam, pytest.raises(ConfigError, match="unknown class 'lymphoma'"):
        cam.explain(np.zeros((64, 64), np.uint8), target="lymphoma")
    with CamExplainer(b) as cam, pytest.raises(ConfigError, match=r"index in 0\.\.1"):
        cam.explain(np.zeros((64, 64), np.uint8), target=2)
    backbone_only = ModelBundle(Path("mem"), b.meta.replace(kind="backbone", classes=()), net)
    with pytest.raises(BundleError, match="no class scores"):
        CamExplainer(backbone_only)


def test_predicted_class_follows_the_bundle_threshold(rng) -> None:
    torch.manual_seed(1)
    net = ClassifierNet("resnet18", 2, in_chans=1, image_size=64, hidden=8)
    image = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    p = Predictor(_bundle(net, "resnet18", 64), threads=1).predict_images([image]).probabilities[0]
    for thr, expected in ((float(p[1]) - 1e-4, 1), (float(p[1]) + 1e-4, 0)):
        pred = Predictor(_bundle(net, "resnet18", 64, threshold=thr), threads=1)
        with CamExplainer(pred) as cam:  # a Predictor is accepted and shared
            res = cam.explain(image)
        assert res.target == expected
        np.testing.assert_allclose(res.probabilities, p, atol=1e-6)


class Brightness(nn.Module):
    """A classifier whose class-1 evidence is the image's brightness: 1x1 identity convolution, ReLU, mean pooling,
    logits (-m, m). Its Grad-CAM for class 1 is the ReLU'd normalised image, so the answer is known pixel by pixel."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(conv.weight)
        self.backbone = nn.Sequential(conv, nn.ReLU())
        self.head = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x).mean(dim=(2, 3)))


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def _brightness_bundle(size: int = 32, roi: str = "none") -> tuple[Brightness, ModelBundle]:
    net = Brightness()
    meta = BundleMeta(kind="classifier", name="b", architecture={"backbone": "resnet18", "num_classes": 2},
                      classes=CLASSES, positive_class="malignant",
                      input=InputSpec(image_size=size, channels=1, mean=(0.0,), std=(1.0,), roi=roi))  # type: ignore[arg-type]
    return net, ModelBundle(Path("mem"), meta, net.eval())


@pytest.mark.parametrize("method", ["gradcam", "gradcampp", "layercam", "scorecam"])
def test_energy_falls_on_the_known_evidence(method: str) -> None:
    from nodescope.explain import energy_in_mask, pointing_hit

    net, b = _brightness_bundle(size=64)
    shape = (60, 90)  # 3:2, padded top and bottom to a square, then 90 -> 64 px
    lesion = _disc(shape, (20, 62), 9)
    image = np.full(shape, 12, np.uint8)
    image[lesion] = 240
    with CamExplainer(b, method=method, target_layer=net.backbone) as cam:
        res = cam.explain(image, target="malignant")
        against = cam.explain(image, target="benign")
    assert _hooks(net) == 0
    # the lesion is 4.6% of the image; the rest is the blur of one resize down and one up (measured 0.928; 0.646
    # on a 32 px grid, 0.959 on 96 px)
    assert energy_in_mask(res.heatmap, lesion) > 0.9
    assert pointing_hit(res.heatmap, lesion) == 1.0
    away = np.zeros(shape, bool)
    away[45:, :20] = True  # a region without evidence
    assert energy_in_mask(res.heatmap, away) < 0.01
    if method in ("gradcam", "layercam"):  # class 0's evidence is negative everywhere: ReLU leaves nothing
        assert against.heatmap.max() == 0.0 and np.isnan(energy_in_mask(against.heatmap, lesion))


def test_original_size_round_trip_of_padding_scale_and_crop() -> None:
    """On the brightness network the map on the model grid is the prepared image itself, so the map drawn back must
    be the original image (min-max scaled), up to the blur of one downscale and upscale."""
    net, b = _brightness_bundle(size=48)
    rng = np.random.default_rng(5)
    shape = (80, 120)
    smooth = np.kron(rng.integers(20, 250, (8, 12)), np.ones((10, 10))).astype(np.uint8)  # blocks of 10 px
    with CamExplainer(b, target_layer=net.backbone) as cam:
        res = cam.explain(smooth, target=1)
    inner = np.zeros(shape, bool)  # block interiors, away from the edges the resize blurs
    for r in range(8):
        for c in range(12):
            inner[r * 10 + 3:r * 10 + 7, c * 10 + 3:c * 10 + 7] = True
    lo = smooth[inner].min()
    expected = (smooth.astype(float) - lo) / (smooth.max() - lo)
    assert np.abs(res.heatmap[inner] - expected[inner]).max() < 0.08
    assert res.transform.offset[0] > 0  # padded rows above the image were not drawn back

    # a crop to the mask's box: nothing outside it, the box itself maps back in place
    net, b = _brightness_bundle(size=48, roi="mask")
    mask = np.zeros(shape, np.uint8)
    mask[30:50, 40:90] = 1
    with CamExplainer(b, target_layer=net.backbone) as cam:
        res = cam.explain(smooth, target=1, mask=mask)
    t, lft, btm, r = res.transform.crop
    assert (t, lft) < (30, 40) and (btm, r) > (50, 90)
    outside = np.ones(shape, bool)
    outside[t:btm, lft:r] = False
    assert res.heatmap[outside].max() == 0.0
    box = inner.copy()
    box[outside] = False
    lo = smooth[t:btm, lft:r][inner[t:btm, lft:r]].min()
    hi = smooth[t:btm, lft:r].max()
    expected = (smooth.astype(float) - lo) / (hi - lo)
    assert np.abs(res.heatmap[box] - expected[box]).max() < 0.08


def test_fusion_bundle_is_explained_per_modality(rng) -> None:
    torch.manual_seed(0)
    mods = ["bmode", "cdfi"]
    net = IntermediateFusionNet("resnet18", mods, 2, in_chans=1, image_size=64, hidden=8)
    arch = {**net.config}
    b = _bundle(net, "resnet18", 64, kind="fusion", arch=arch)
    imgs = {m: rng.integers(0, 256, (60 + 10 * i, 64), dtype=np.uint8) for i, m in enumerate(mods)}
    with CamExplainer(b, method="gradcam") as cam:
        both = cam.explain_unit(imgs)
        one = cam.explain(imgs["cdfi"], modality="cdfi", others={"bmode": imgs["bmode"]})
        alone = cam.explain(imgs["cdfi"], modality="cdfi")  # B-mode absent, as with modality dropout
        assert cam.n_hooks == 4  # one target layer per encoder
        with pytest.raises(ConfigError, match="takes \\['bmode', 'cdfi'\\]"):
            cam.explain(imgs["cdfi"], modality="elastography")
    assert _hooks(net) == 0
    assert list(both) == mods
    assert both["bmode"].heatmap.shape == (60, 64) and both["cdfi"].heatmap.shape == (70, 64)
    np.testing.assert_allclose(one.heatmap, both["cdfi"].heatmap, atol=1e-6)
    assert one.target == both["cdfi"].target
    assert not np.allclose(alone.probabilities, both["cdfi"].probabilities)
    # the fused probabilities are those of the whole network on the unit
    x = torch.stack([b.spec.prepare(imgs[m])[0] for m in mods])[None].float() / 255
    with torch.no_grad():
        p = torch.softmax(net((x - 0.5) / 0.25), 1)[0].numpy()
    np.testing.assert_allclose(both["bmode"].probabilities, p, atol=1e-5)


def test_display_pixels_maps_16_bit_as_the_model_input() -> None:
    from nodescope.data import UltrasoundImage
    from nodescope.explain import display_pixels

    px = np.array([[0, 2048, 4095, 65535]], np.uint16)
    twelve = UltrasoundImage(px, Path("a.dcm"), meta={"bits_stored": 12})
    # 12 stored bits: round(min(v, 4095) * 255 / 4095); the legacy rule divides by 65535
    np.testing.assert_array_equal(display_pixels(twelve), [[0, 128, 255, 255]])
    np.testing.assert_array_equal(display_pixels(twelve, uint16="full_range"), [[0, 8, 16, 255]])
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert display_pixels(rgba).shape == (2, 2, 3)


def test_overlay_heatmap() -> None:
    grey = np.full((4, 6), 100, np.uint8)
    heat = np.zeros((4, 6), np.float32)
    heat[0, 0] = 1.0
    out = overlay_heatmap(grey, heat, alpha=0.0)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8 and (out == 100).all()
    full = overlay_heatmap(grey, heat, alpha=1.0)
    import matplotlib

    np.testing.assert_array_equal(full[0, 0], np.rint(np.array(matplotlib.colormaps["jet"](1.0)[:3]) * 255))
    half = overlay_heatmap(np.stack([grey] * 3, -1), heat, 0.5)
    assert half[1, 1, 2] == round(0.5 * 100 + 0.5 * matplotlib.colormaps["jet"](0.0)[2] * 255)
    with pytest.raises(ValueError, match="differs"):
        overlay_heatmap(grey, heat[:3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        overlay_heatmap(grey, heat * 2)
    with pytest.raises(TypeError, match="uint8"):
        overlay_heatmap(grey.astype(np.uint16), heat)
