"""Every registered backbone builds and gives the right output shape on a tiny tensor."""

from __future__ import annotations

import pytest
import torch

from nodescope.models import BACKBONES, ClassifierNet, get_backbone_spec, list_backbones

# Large ones take a few seconds to initialise; they still run in CI.
_SLOW = {"resnet152", "inception_resnet_v2", "resnet101", "swin_tiny", "densenet121", "convnext_tiny"}


def _size(name: str) -> int:
    spec = BACKBONES[name]
    return {"swin": 64, "vit": 32}.get(spec.family, max(spec.min_size, 32))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n for n in list_backbones()])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_every_backbone_builds(name: str, in_chans: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    s = _size(name)
    net = ClassifierNet(name, 3, in_chans=in_chans, image_size=s, head="mlp" if in_chans == 3 else "linear").eval()
    with torch.no_grad():
        out = net(torch.randn(2, in_chans, s, s))
    assert out.shape == (2, 3)
    assert torch.isfinite(out).all()


def test_mlp_head_layout() -> None:
    net = ClassifierNet("resnet18", 2, image_size=32, hidden=64, dropout=0.3)
    layers = list(net.head)
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU", "Dropout", "Linear", "Temperature"]
    assert layers[0].out_features == 64 and layers[2].p == 0.3 and layers[3].out_features == 2
    assert float(layers[4].temperature) == 1.0  # set only by calibrate="temperature"


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"backbone": "resnet19"}, ValueError, "Did you mean 'resnet18'"),
        ({"in_chans": 2}, ValueError, "in_chans"),
        ({"num_classes": 1}, ValueError, "num_classes"),
        ({"head": "deep"}, ValueError, "head"),
        ({"backbone": "inception_v3", "image_size": 64}, ValueError, "at least 75"),
        ({"backbone": "vit_small_patch16_224", "image_size": 40}, ValueError, "multiple of 16"),
    ],
)
def test_bad_arguments(kwargs: dict, exc: type, match: str) -> None:
    args = {"backbone": "resnet18", "num_classes": 2, "image_size": 32, **kwargs}
    with pytest.raises(exc, match=match):
        ClassifierNet(args.pop("backbone"), args.pop("num_classes"), **args)


def test_spec_type_error() -> None:
    with pytest.raises(TypeError, match="backbone"):
        get_backbone_spec(3)  # type: ignore[arg-type]
