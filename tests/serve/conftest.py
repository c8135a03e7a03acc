"""Fixtures of the service tests: tiny bundles (ResNet-18 at 32 px, seeded), images in memory, app factories."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from nodescope.models import BundleMeta, ClassifierNet, InputSpec, IntermediateFusionNet, Threshold, save_bundle

MODALITIES = ("bmode", "cdfi", "elastography")


def _meta(kind: str, arch: dict[str, Any], mods: tuple[str, ...] | None, *, name: str, roi: str = "none",
          channels: int = 1) -> BundleMeta:
    return BundleMeta(
        kind=kind, name=name, run_id="serve-test", architecture=arch, classes=("benign", "malignant"),
        positive_class="malignant",
        input=InputSpec(image_size=32, channels=channels, mean=(0.5,) * channels, std=(0.25,) * channels,
                        roi=roi, modalities=mods),  # type: ignore[arg-type]
        threshold=Threshold(0.42, "youden", "cv (pooled out-of-fold)", "p_malignant >= value"),
        training={"n_patients": 12, "source": "tiny synthetic test data"}, weights_init={"source": "none"},
        synthetic_data=True)


def make_classifier(path: Path, modality: str | None, *, seed: int = 0, roi: str = "none") -> Path:
    """A seeded ResNet-18 classifier bundle (1 channel, 32 px) for ``modality`` (None: any image)."""
    torch.manual_seed(seed)
    net = ClassifierNet("resnet18", 2, in_chans=1, image_size=32, hidden=8, dropout=0.0)
    arch = {"backbone": "resnet18", "num_classes": 2, "in_chans": 1, "image_size": 32, "head": "mlp", "hidden": 8,
            "dropout": 0.0}
    meta = _meta("classifier", arch, (modality,) if modality else None, name=f"tiny_{modality or 'any'}", roi=roi)
    metrics = {"metric": "auc", "splits": {"cv": {"n": 24, "patients": 12, "auc": 0.61,
                                                  "auc_ci": [0.4, 0.8]}}}
    return save_bundle(path, net, meta, metrics=metrics)


def make_fusion(path: Path) -> Path:
    """A seeded intermediate-fusion bundle (shared ResNet-18 encoder) over the three modalities."""
    torch.manual_seed(1)
    net = IntermediateFusionNet("resnet18", list(MODALITIES), 2, in_chans=1, image_size=32, hidden=8, dropout=0.0,
                                shared=True)
    return save_bundle(path, net, _meta("fusion", {"kind": "fusion", **net.config}, MODALITIES, name="tiny_fusion"))


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Classifier bundles per modality, a modality-free one, a fusion bundle and a roi=mask one."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bundles")
    out = {m: make_classifier(root / m, m, seed=i) for i, m in enumerate(MODALITIES)}
    out["any"] = make_classifier(root / "any", None, seed=7)
    out["fusion"] = make_fusion(root / "fusion")
    out["roi"] = make_classifier(root / "roi", None, seed=8, roi="mask")
    return out


def png(shape: tuple[int, ...] = (40, 48), seed: int = 0, fmt: str = "PNG") -> bytes:
    """A random grey (or RGB for a 3-tuple shape) image encoded in memory."""
    arr = np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def make_client(bundles: dict[str, Path]) -> Iterator[Callable[..., Any]]:
    """``make_client(names, **settings)`` -> a started ``TestClient`` (services cached per bundle set and engine)."""
    from fastapi.testclient import TestClient

    from nodescope.serve import create_app, load_service, load_settings

    cache: dict[tuple[Any, ...], Any] = {}
    clients: list[Any] = []

    def make(names: tuple[str, ...] = ("bmode", "cdfi", "elastography", "fusion"), **settings: Any) -> Any:
        s = load_settings(bundles=[bundles[n] for n in names], threads=1, **settings)
        key = (names, s.engine, tuple(s.segmenter))
        if key not in cache:
            cache[key] = load_service(s.bundles, engine=s.engine, threads=1, segmenter=s.segmenter)
        client = TestClient(create_app(s, cache[key]), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)
