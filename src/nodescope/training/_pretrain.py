"""Ultrasound multitask pretraining (``nodescope pretrain``): a shared backbone, one head per task.

The CV4LymphNode recipe, with its settings as defaults: Adam, lr 5e-5, batch 16, a 4:1 train/validation split
(by group) of every task, tasks interleaved batch by batch within each epoch (round robin until every task's batches
are used), early stopping on the mean over tasks of the validation cross-entropy (patience 5); the weights of the best
epoch are kept. The result is a ``kind="backbone"`` bundle that ``nodescope train --weights BUNDLE`` starts from.

Leakage guard: the SHA-256 of every pretraining image's pixels is saved in ``pretrain_images.json``; ``train``
refuses to evaluate on images found there (identical pixels). ``exclude`` manifests (the later experiment's data)
remove matching images from pretraining up front.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nodescope._logs import attach_log_file
from nodescope._progress import Progress
from nodescope.errors import ConfigError, DataError
from nodescope.training._augment import AugmentLevel, UltrasoundAugment

__all__ = ["PretrainResult", "PretrainTask", "run_pretrain"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainTask:
    """One pretraining task: a manifest whose labels define the classes of its head."""

    manifest: Path
    group_col: str = "patient_id"
    name: str | None = None


@dataclass(frozen=True)
class PretrainResult:
    """The backbone bundle written and the training history (mean validation loss per epoch)."""

    bundle: Path
    best_val_loss: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    excluded_images: int = 0


def _load_task(task: PretrainTask, size: int, channels: int, exclude: set[str], val_fraction: float, seed: int):
    from nodescope.data import make_splits, read_manifest
    from nodescope.training._data import preload_images

    m = read_manifest(task.manifest, group_col=task.group_col)
    pre = preload_images(m.image_paths(), size=size, channels=channels)
    keep = np.array([h not in exclude for h in pre.hashes])
    n_ex = int((~keep).sum())
    if n_ex:
        log.warning("%s: %d image(s) also in the excluded experiment data are left out", task.manifest, n_ex)
    frame = m.frame[keep].reset_index(drop=True)
    images = pre.images[torch.as_tensor(np.flatnonzero(keep))]
    hashes = [h for h, k in zip(pre.hashes, keep, strict=True) if k]
    classes = tuple(sorted(set(frame["label"])))
    if len(classes) < 2:
        raise DataError(f"pretrain task {task.manifest}: needs >= 2 classes, found {list(classes)}")
    y = torch.tensor(frame["label"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64))
    sp = make_splits(frame, method="holdout", group_col=task.group_col, test_size=val_fraction, seed=seed)
    val = (sp["part"] == "test").to_numpy()
    return {"name": task.name or Path(task.manifest).parent.name, "classes": classes, "images": images, "y": y,
            "train": np.flatnonzero(~val), "val": np.flatnonzero(val), "hashes": hashes, "excluded": n_ex}


def run_pretrain(tasks: list[PretrainTask], out: str | Path, *, backbone: str = "tf_efficientnet_lite0",
                 weights: str = "imagenet", image_size: int = 224, channels: int = 3, epochs: int = 50,
                 batch_size: int = 16, lr: float = 5e-5, patience: int = 5, val_fraction: float = 0.2, seed: int = 0,
                 augment: AugmentLevel = "standard", exclude: list[Path] | None = None,
                 num_threads: int | None = None, progress: Progress | None = None) -> PretrainResult:
    """Pretrain a backbone on several labelled ultrasound data sets; write a backbone bundle to ``out``.

    Parameters
    ----------
    tasks : list of PretrainTask
        One head per task (classes = the task manifest's labels).
    out : path
        Bundle directory to write.
    backbone, weights : str
        Registered backbone; starting weights (``none``, ``imagenet``, path).
    image_size, channels, epochs, batch_size, lr, patience, val_fraction, seed, augment
        See the module docstring for the defaults' origin.
    exclude : list of Path
        Manifests whose images (identical pixels) must not be used for pretraining.
    num_threads : int, optional
        Torch CPU threads.
    progress : Progress, optional
        Shows the epochs (losses, ETA); None shows nothing.

    Notes
    -----
    Inside a :class:`nodescope._logs.LogCapture` (the command line), logging and warnings go to
    ``<out>/pretrain.log`` once the data are read.
    """
    from nodescope.data import read_manifest
    from nodescope.models import (
        UINT16_RULE,
        BundleMeta,
        InputSpec,
        build_backbone,
        default_normalisation,
        load_weights,
        make_head,
        save_bundle,
    )
    from nodescope.models._registry import feature_dim
    from nodescope.training._data import pixel_hash

    if not tasks:
        raise ConfigError("tasks: give at least one pretraining manifest")
    if epochs < 1 or patience < 1 or batch_size < 2:
        raise ConfigError(f"epochs, patience must be >= 1 and batch_size >= 2; got {epochs}, {patience}, {batch_size}")
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    excl: set[str] = set()
    from nodescope.data import read_image

    for ex in exclude or []:
        em = read_manifest(ex, check_images=False, group_col="image")
        excl |= {pixel_hash(read_image(p).pixels) for p in em.image_paths()}
    data = [_load_task(t, image_size, channels, excl, val_fraction, seed) for t in tasks]
    bb = build_backbone(backbone, in_chans=channels, image_size=image_size)
    info = load_weights(bb, backbone, weights, in_chans=channels, image_size=image_size)
    nf = feature_dim(bb)
    heads = nn.ModuleList(make_head(nf, len(d["classes"])) for d in data)
    mean, std = default_normalisation(backbone, channels)
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    aug = UltrasoundAugment.from_level(augment)
    params = list(bb.parameters()) + list(heads.parameters())
    opt = torch.optim.Adam(params, lr=lr)

    def prep(x: torch.Tensor, train: bool) -> torch.Tensor:
        x = x.float() / 255
        if train and aug is not None:
            x = aug(x)
        return (x - mean_t) / std_t

    best, best_epoch, best_state, wait, history = float("inf"), -1, None, 0, []
    Path(out).mkdir(parents=True, exist_ok=True)
    attach_log_file(Path(out) / "pretrain.log")
    with (progress or Progress(None)).task("pretraining", total=epochs) as shown:
        for epoch in range(epochs):
            tr_loss = _train_epoch(bb, heads, data, _interleaved_batches(data, rng, batch_size), opt, prep)
            vals = _val_losses(bb, heads, data, prep)
            mval = float(np.mean(vals))
            history.append({"epoch": epoch, "train_loss": float(np.mean(tr_loss)) if tr_loss else float("nan"),
                            "val_loss": mval, **{f"val_loss_{d['name']}": v for d, v in zip(data, vals, strict=True)}})
            log.info("pretrain epoch %d: mean val loss %.4f", epoch, mval)
            shown.update(epoch + 1, status=f"epoch {epoch + 1}/{epochs}  train_loss {history[-1]['train_loss']:.3f}  "
                                           f"mean val_loss {mval:.3f}", line=True)
            if mval < best:
                best, best_epoch, best_state, wait = mval, epoch, copy.deepcopy(bb.state_dict()), 0
            else:
                wait += 1
                if wait >= patience:
                    break
    bb.load_state_dict(best_state)  # type: ignore[arg-type]
    holder = nn.Module()
    holder.backbone = bb
    all_hashes = sorted({h for d in data for h in d["hashes"]})
    meta = BundleMeta(
        kind="backbone", name=f"{backbone}_us_pretrained",
        architecture={"backbone": backbone, "in_chans": channels, "image_size": image_size},
        input=InputSpec(image_size=image_size, channels=channels, mean=tuple(mean), std=tuple(std), uint16=UINT16_RULE),
        weights_init=info.to_dict(),
        pretraining={"tasks": [{"name": d["name"], "classes": list(d["classes"]), "n_train": len(d["train"]),
                                "n_val": len(d["val"]), "excluded_images": d["excluded"],
                                "manifest": str(t.manifest)} for d, t in zip(data, tasks, strict=True)],
                     "optimizer": "adam", "lr": lr, "batch_size": batch_size, "patience": patience,
                     "val_fraction": val_fraction, "best_epoch": best_epoch, "best_mean_val_loss": best,
                     "epochs_run": len(history)},
    )
    path = save_bundle(out, holder, meta, metrics={"history": history},
                       extra_files={"pretrain_images.json": json.dumps(all_hashes)})
    return PretrainResult(path, best, best_epoch, history, sum(d["excluded"] for d in data))


def _interleaved_batches(data: list[dict[str, Any]], rng: np.random.Generator, batch_size: int
                         ) -> list[tuple[int, np.ndarray]]:
    """One epoch's ``(task, indices)`` batches: each task's training rows shuffled, tasks taking turns."""
    queues = []
    for t, d in enumerate(data):
        idx = rng.permutation(d["train"])
        queues.append([(t, idx[i:i + batch_size]) for i in range(0, len(idx), batch_size)
                       if len(idx[i:i + batch_size]) > 1])
    return [b for group in zip(*[q + [None] * (max(map(len, queues)) - len(q)) for q in queues], strict=True)
            for b in group if b is not None]


def _train_epoch(bb: nn.Module, heads: nn.ModuleList, data: list[dict[str, Any]],
                 order: list[tuple[int, np.ndarray]], opt: torch.optim.Optimizer,
                 prep: Callable[[torch.Tensor, bool], torch.Tensor]) -> list[float]:
    """One pass over the batches (backbone + the batch's task head); returns the batch losses."""
    bb.train()
    heads.train()
    tr_loss = []
    for t, bidx in order:
        d = data[t]
        j = torch.as_tensor(bidx)
        loss = F.cross_entropy(heads[t](bb(prep(d["images"][j], True))), d["y"][j])
        opt.zero_grad()
        loss.backward()
        opt.step()
        tr_loss.append(float(loss.detach()))
    return tr_loss


def _val_losses(bb: nn.Module, heads: nn.ModuleList, data: list[dict[str, Any]],
                prep: Callable[[torch.Tensor, bool], torch.Tensor]) -> list[float]:
    """Mean validation cross-entropy of each task."""
    bb.eval()
    heads.eval()
    vals = []
    with torch.no_grad():
        for t, d in enumerate(data):
            tot, n = 0.0, 0
            for i in range(0, len(d["val"]), 64):
                j = torch.as_tensor(d["val"][i:i + 64])
                tot += float(F.cross_entropy(heads[t](bb(prep(d["images"][j], False))), d["y"][j], reduction="sum"))
                n += len(j)
            vals.append(tot / max(n, 1))
    return vals
