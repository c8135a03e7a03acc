"""Fixtures of the service tests (helpers in tests/helpers/serve_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from serve_helpers import MODALITIES, LiveServer, make_classifier, make_fusion, make_segmenter


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ONNX exports go to a temporary cache (the service never writes into bundles; tests never into ~/.cache)."""
    import os

    path = tmp_path_factory.mktemp("onnx-cache")
    before = os.environ.get("NODESCOPE_ONNX_CACHE")
    os.environ["NODESCOPE_ONNX_CACHE"] = str(path)
    yield path
    if before is None:
        os.environ.pop("NODESCOPE_ONNX_CACHE", None)
    else:
        os.environ["NODESCOPE_ONNX_CACHE"] = before


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Classifier bundles per modality, a modality-free one, a fusion bundle and a roi=mask one."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bundles")
    out = {m: make_classifier(root / m, m, seed=i) for i, m in enumerate(MODALITIES)}
    out["any"] = make_classifier(root / "any", None, seed=7)
    out["fusion"] = make_fusion(root / "fusion")
    out["roi"] = make_classifier(root / "roi", None, seed=8, roi="mask")
    out["seg"] = make_segmenter(root / "seg")
    return out


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


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """``live_server(app)`` -> a started :class:`LiveServer`, stopped after the test."""
    started: list[LiveServer] = []

    def start(app: Any, **kw: Any) -> LiveServer:
        started.append(LiveServer(app, **kw))
        return started[-1]

    yield start
    for s in started:
        s.stop()
