"""One cache for every ONNX export (classifier, fusion and segmenter bundles): bundle folders are never written.

A bundle folder is an input. ``--engine onnx`` keeps its exports in a cache folder (:func:`onnx_cache_dir`), each as
``<kind>-<key>.onnx`` with a record ``<kind>-<key>.onnx.json`` beside it. The key is the SHA-256 of everything that
decides the graph: the SHA-256 of the bundle's ``weights.safetensors``, its architecture and input spec (size,
channels, normalisation), the opset, the graph's input and output names and the layout version of this cache. A
bundle whose weights are replaced (whatever the files' modification times) therefore gets a new export, and two
bundles never share one.

Writing is safe when several processes start at once (two servers, a server and ``nodescope predict``):

- the exclusive lock ``.<name>.lock`` (``fcntl.flock``) is held while an entry is checked and, if needed, exported,
  so the export is made once; the other processes wait for it and then reuse it;
- the export is written to a temporary file in the cache folder (``.<name>.<random>.tmp``) and renamed into place,
  so a half-written file never carries the final name (temporary files left by a killed process are removed the
  next time the entry is locked);
- the record holds the export's SHA-256 and size, checked on every use: a file that does not match it (truncated,
  overwritten, its record missing or from another export) is never loaded; it is exported again and replaced, with a
  warning in the log.

Where locks are not available (no ``fcntl``, a read-only cache folder) the check and the rename still hold: a valid
export in a read-only cache is used, and one that must be written there is refused with a ``ConfigError``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nodescope._files import _inside, atomic_path, atomic_write_text
from nodescope.errors import BundleError, ConfigError
from nodescope.models._bundle import ModelBundle

__all__ = ["cached_onnx_export", "onnx_cache_dir", "onnx_export_key"]

log = logging.getLogger(__name__)

#: Bumped when the layout of an entry or of its record changes (older entries are then exported again).
CACHE_LAYOUT = 2


def onnx_cache_dir() -> Path:
    """The folder of the ONNX exports: ``$NODESCOPE_ONNX_CACHE``, else ``$NODESCOPE_CACHE_DIR/onnx``, else
    ``$XDG_CACHE_HOME/nodescope/onnx``, else ``~/.cache/nodescope/onnx``.

    ``NODESCOPE_CACHE_DIR`` is nodescope's cache folder (it replaces ``$XDG_CACHE_HOME/nodescope``);
    ``NODESCOPE_ONNX_CACHE`` names the ONNX folder itself. The folder is created when an export is first written.

    Returns
    -------
    Path
    """
    env = os.environ.get("NODESCOPE_ONNX_CACHE")
    if env:
        return Path(env).expanduser()
    root = os.environ.get("NODESCOPE_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "nodescope" / "onnx"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def onnx_export_key(bundle: ModelBundle, *, opset: int, input_names: Sequence[str], outputs: Sequence[str]
                    ) -> dict[str, Any]:
    """What an export of ``bundle`` depends on (JSON-normalised); its SHA-256 names the cache entry.

    Parameters
    ----------
    bundle : ModelBundle
    opset : int
    input_names, outputs : sequence of str
        The graph's input and output names.

    Returns
    -------
    dict
        ``layout``, ``kind``, ``weights_sha256`` (of ``weights.safetensors``), ``architecture``, ``input`` (the
        input spec), ``opset``, ``inputs``, ``outputs``.
    """
    key = {"layout": CACHE_LAYOUT, "kind": bundle.kind,
           "weights_sha256": _file_sha256(bundle.path / "weights.safetensors"),
           "architecture": bundle.meta.architecture, "input": bundle.spec.to_dict(), "opset": int(opset),
           "inputs": list(input_names), "outputs": list(outputs)}
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def _record_path(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def _why_unusable(out: Path, key: dict[str, Any]) -> str | None:
    """None when ``out`` is a whole export for ``key`` (its record matches the key and the file's SHA-256 and size);
    else the reason (``"absent"`` when neither the file nor its record exists)."""
    rec_path = _record_path(out)
    if not out.exists() and not rec_path.exists():
        return "absent"
    try:
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "its record is missing"
    except (OSError, ValueError) as exc:
        return f"its record is unreadable ({exc.__class__.__name__})"
    if not isinstance(rec, dict) or rec.get("key") != key:
        return "its record is that of other weights or settings"
    try:
        size = out.stat().st_size
    except FileNotFoundError:
        return "the .onnx file is missing"
    if size != rec.get("bytes") or _file_sha256(out) != rec.get("sha256"):
        return "its content does not match its record (truncated or overwritten)"
    return None


@contextmanager
def _entry_lock(out: Path) -> Iterator[bool]:
    """Hold the exclusive lock ``.<name>.lock`` beside ``out``; yields False where no lock can be taken."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False
        return
    try:
        fh = open(out.with_name(f".{out.name}.lock"), "a")
    except OSError:  # a read-only cache: reading needs no lock
        yield False
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield True
    finally:
        fh.close()  # releases the lock


def _cache_target(bundle: ModelBundle, key: dict[str, Any], path: str | Path | None,
                  cache_dir: str | Path | None) -> Path:
    """``path``, else ``<cache>/<kind>-<key SHA-256[:32]>.onnx``; refused inside the bundle folder."""
    if path is not None:
        out = Path(path)
        folder = out.parent
    else:
        folder = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        out = folder / f"{bundle.kind}-{digest[:32]}.onnx"
    if _inside(out, bundle.path):
        raise ConfigError(f"onnx export {out}: lies inside the bundle {bundle.path}; a bundle folder is an input and "
                          "is never written: choose another file or cache folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"onnx cache {folder}: cannot create the folder ({exc.strerror}); choose another with "
                          "--onnx-cache or NODESCOPE_CACHE_DIR") from None
    return out


def _export(bundle: ModelBundle, module: nn.Module, example: tuple[torch.Tensor, ...], out: Path,
            key: dict[str, Any]) -> None:
    """``torch.onnx.export`` (dynamic batch) through a temporary file and a rename, then the record."""
    axes = {k: {0: "batch"} for k in (*key["inputs"], *key["outputs"])}
    try:
        with atomic_path(out) as tmp:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(module, example, str(tmp), dynamo=False, input_names=key["inputs"],
                                      output_names=key["outputs"], dynamic_axes=axes, opset_version=key["opset"])
            except OSError:
                raise
            except Exception as exc:  # any other exporter failure: this bundle cannot run on ONNX Runtime
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise BundleError(f"bundle {bundle.path}: its {bundle.kind} network cannot be exported to ONNX "
                                  f"({exc.__class__.__name__}: {first}); use engine 'torch'") from None
            # "bundle": the folder it was first exported from (copies of a bundle share the entry)
            record = {"key": key, "sha256": _file_sha256(tmp), "bytes": tmp.stat().st_size,
                      "torch": torch.__version__, "bundle": str(bundle.path)}
        atomic_write_text(_record_path(out), json.dumps(record, indent=1, sort_keys=True))
    except OSError as exc:
        raise ConfigError(f"onnx cache {out.parent}: cannot write the export ({exc.strerror}); choose a writable "
                          "folder with --onnx-cache or NODESCOPE_CACHE_DIR") from None


def cached_onnx_export(bundle: ModelBundle, module: nn.Module, example: tuple[torch.Tensor, ...], *,
                       input_names: Sequence[str], outputs: Sequence[str], opset: int = 17,
                       path: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """The ONNX export of ``module`` (``bundle``'s network, wrapped), from the cache or made now (module docstring).

    Parameters
    ----------
    bundle : ModelBundle
        Whose weights and settings key the entry, and whose folder is never written.
    module : torch.nn.Module
        What to export, in eval mode (a copy: the exporter restores the training flag it finds).
    example : tuple of torch.Tensor
        Example inputs, batch of 1 (the batch axis of every input and output is dynamic).
    input_names, outputs : sequence of str
        The graph's input and output names.
    opset : int, default 17
    path : str or Path, optional
        Export to this file (with its record ``<file>.json``) instead of the cache.
    cache_dir : str or Path, optional
        The cache folder (default :func:`onnx_cache_dir`).

    Returns
    -------
    Path
        A whole export of these weights and settings.

    Raises
    ------
    BundleError
        The network cannot be exported (names the bundle).
    ConfigError
        The file or cache lies inside the bundle, or cannot be written.
    """
    key = onnx_export_key(bundle, opset=opset, input_names=input_names, outputs=outputs)
    out = _cache_target(bundle, key, path, cache_dir)
    with _entry_lock(out) as locked:
        why = _why_unusable(out, key)
        if why is None:
            log.debug("ONNX export reused: %s", out)
            return out
        if why != "absent":
            log.warning("ONNX export %s is not used and is exported again: %s", out, why)
        if locked:  # no other process is exporting this entry: any temporary file of it is a dead one's
            for stale in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
                stale.unlink(missing_ok=True)
        _export(bundle, module, example, out, key)
    log.info("exported %s (bundle %s)", out, bundle.path)
    return out
