"""The models a server holds: classifier bundles (each a long-lived :class:`~nodescope.models.Predictor`),
intermediate-fusion bundles, and the late fusion of single-modality classifiers; optional segmenter and Grad-CAM.

Everything is loaded once at start-up (:func:`load_service`) and warmed up; a bundle that cannot be loaded stops
start-up with its :class:`~nodescope.errors.BundleError`. Inference is called from the server's bounded worker pool.
Calls into a torch network hold that network's lock, so Grad-CAM hooks never see another request's forward pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from nodescope.errors import BundleError, ConfigError
from nodescope.models import (
    FusionOnnxPredictor,
    ModelBundle,
    Predictor,
    export_fusion_onnx,
    load_bundle,
    onnx_cache_dir,
)

__all__ = ["ClassifierModel", "FusionModel", "LateFusionModel", "ModelService", "ServedModel", "decide",
           "load_service"]

log = logging.getLogger(__name__)

#: The CV4LymphNode inputs, and ``image`` for a model that takes any single image.
MODALITY_FIELDS = ("bmode", "cdfi", "elastography", "image")


def decide(probs: np.ndarray, classes: Sequence[str], positive: str | None, threshold: float | None
           ) -> tuple[str, str]:
    """The predicted class and the rule in words: ``p_<positive> >= threshold`` for a binary model with a
    threshold, else the most probable class."""
    if positive is not None and threshold is not None and len(classes) == 2:
        neg = next(c for c in classes if c != positive)
        p = float(probs[list(classes).index(positive)])
        return (positive if p >= threshold else neg), f"p_{positive} = {p:.4f} {'>=' if p >= threshold else '<'} " \
                                                       f"threshold {threshold:.4f}"
    k = int(np.argmax(probs))
    return classes[k], "most probable class (no operating threshold)"


@dataclass
class ServedModel:
    """A model the server offers; subclasses implement :meth:`predict`.

    Attributes
    ----------
    id : str
    kind : {"classifier", "fusion", "late_fusion"}
    classes : tuple of str
    positive_class, threshold : str or None, float or None
    fields : tuple of str
        Form fields read (modalities, or ``("image",)``).
    bundle : ModelBundle or None
        None for late fusion.
    """

    id: str
    kind: str
    classes: tuple[str, ...]
    positive_class: str | None
    threshold: float | None
    fields: tuple[str, ...]
    bundle: ModelBundle | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def predict(self, images: Mapping[str, Any], masks: Mapping[str, np.ndarray | None]
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Probabilities ``(K,)`` for the images given per field, and per-field probabilities for multimodal
        models (empty for single-image models)."""
        raise NotImplementedError

    def explain_target(self, field_name: str) -> ServedModel | None:
        """The model whose network Grad-CAM explains for ``field_name`` (None: not available)."""
        return self

    def threshold_for(self, fields: Sequence[str]) -> float | None:
        """The operating threshold of a prediction from the images of ``fields`` (the bundle's, whatever is
        given)."""
        return self.threshold


@dataclass
class ClassifierModel(ServedModel):
    """A ``classifier`` bundle through a :class:`~nodescope.models.Predictor` (torch or ONNX)."""

    predictor: Predictor | None = None

    def prepare(self, image: Any, mask: np.ndarray | None) -> torch.Tensor:
        assert self.predictor is not None
        return self.predictor.prepare(image, mask=mask if self.predictor.spec.needs_mask else None)[0]

    def predict(self, images: Mapping[str, Any], masks: Mapping[str, np.ndarray | None]
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        assert self.predictor is not None
        (name, image), = images.items()
        x = self.prepare(image, masks.get(name))[None]
        if self.predictor.engine == "onnx":
            return self.predictor.predict(x).probabilities[0], {}
        with self.lock:
            return self.predictor.predict(x).probabilities[0], {}



@dataclass
class FusionModel(ServedModel):
    """An intermediate-fusion bundle: absent modalities are given as absent, as in training. Runs on PyTorch, or on
    ONNX Runtime when ``onnx`` holds the export (:func:`nodescope.models.export_fusion_onnx`)."""

    onnx: FusionOnnxPredictor | None = None

    def _probs(self, xs: dict[str, torch.Tensor]) -> np.ndarray:
        assert self.bundle is not None
        spec, mods = self.bundle.spec, self.fields
        s, c = spec.image_size, spec.channels
        x = torch.zeros((1, len(mods), c, s, s), dtype=torch.uint8)
        present = torch.zeros((1, len(mods)), dtype=torch.bool)
        for i, m in enumerate(mods):
            if m in xs:
                x[0, i], present[0, i] = xs[m], True
        if self.onnx is not None:
            x01, pres = x.numpy().astype(np.float32) / np.float32(255.0), present.numpy()
            p_np = self.onnx(x01, pres)
            if spec.tta:
                p_np = (p_np + self.onnx(x01[..., ::-1], pres)) / 2
            return p_np[0]
        xf = spec.normalise(x.flatten(0, 1)).view(1, len(mods), c, s, s)
        with self.lock, torch.inference_mode():
            p = torch.softmax(self.bundle.model(xf, present), dim=1)
            if spec.tta:
                p = (p + torch.softmax(self.bundle.model(torch.flip(xf, dims=[4]), present), dim=1)) / 2
        return p[0].numpy()

    def predict(self, images: Mapping[str, Any], masks: Mapping[str, np.ndarray | None]
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        assert self.bundle is not None
        spec = self.bundle.spec
        xs = {m: spec.prepare(img, mask=masks.get(m) if spec.roi == "mask" else None)[0] for m, img in images.items()}
        per = {m: self._probs({m: t}) for m, t in xs.items()} if len(xs) > 1 else {}
        return self._probs(xs), per


@dataclass
class LateFusionModel(ServedModel):
    """The mean of the available modalities' classifier probabilities (late fusion, ``mean``).

    Operating threshold (binary members that all have one): the mean of the thresholds of the members whose images
    are given, so ``mean(p_m) >= mean(t_m)``, i.e. the members' margins over their own validated thresholds sum to
    >= 0. With one image it is exactly that member's decision. :attr:`threshold` is the value with every modality
    given. It was not chosen on fused predictions (the service has none); a threshold validated on out-of-fold
    late-fusion predictions would be better where one exists.
    """

    members: dict[str, ClassifierModel] = field(default_factory=dict)

    def threshold_for(self, fields: Sequence[str]) -> float | None:
        ts = [self.members[f].threshold for f in fields if f in self.members]
        if self.threshold is None or not ts or any(t is None for t in ts):
            return None
        return float(np.mean(np.asarray(ts, dtype=float)))

    def predict(self, images: Mapping[str, Any], masks: Mapping[str, np.ndarray | None]
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        per = {m: self.members[m].predict({m: img}, masks)[0] for m, img in images.items()}
        return np.mean(np.stack(list(per.values())), axis=0), per

    def explain_target(self, field_name: str) -> ServedModel | None:
        return self.members.get(field_name)


@dataclass
class ModelService:
    """Everything a server holds: the models (by id, in order), the default model and the optional segmenter."""

    models: dict[str, ServedModel]
    default: str
    engine: Literal["torch", "onnx"]
    threads: int
    segmenter: Any = None
    segmenter_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, model_id: str | None) -> ServedModel:
        """The model ``model_id`` (default: :attr:`default`); an unknown id is a ConfigError listing the ids."""
        mid = model_id or self.default
        if mid not in self.models:
            raise ConfigError(f"model {mid!r} is not served; served models: {list(self.models)}")
        return self.models[mid]

    def warm_up(self) -> None:
        """One prediction per model on a blank image (first-call allocations and ONNX/torch initialisation)."""
        for m in self.models.values():
            blank = np.zeros((64, 64, 1), np.uint8)
            m.predict({f: blank for f in m.fields}, {f: np.ones((64, 64), bool) for f in m.fields})
        log.info("warmed up %d model(s)", len(self.models))


def _unique(name: str, taken: dict[str, Any]) -> str:
    out, k = name, 2
    while out in taken:
        out, k = f"{name}-{k}", k + 1
    return out


def _field_of(bundle: ModelBundle) -> str:
    mods = bundle.meta.modalities
    if mods and len(mods) == 1 and mods[0] in MODALITY_FIELDS:
        return mods[0]
    return "image"


def load_service(bundles: Sequence[str | Path], *, engine: str = "torch", threads: int = 1,
                 segmenter: Sequence[str | Path] = (), warm: bool = True, onnx_cache: str | Path | None = None
                 ) -> ModelService:
    """Load the bundles (and segmenters) once; add a late-fusion model over single-modality classifiers.

    Parameters
    ----------
    bundles : sequence of path
        ``classifier`` or ``fusion`` bundle folders.
    engine : {"torch", "onnx"}
        Classifier, fusion and segmenter bundles (Grad-CAM always runs on the PyTorch network).
    threads : int
        Intra-op threads (torch's process-wide setting; ONNX Runtime per session).
    segmenter : sequence of path
        Segmenter bundles (``nodescope.segment.Segmenter``); masks averaged.
    warm : bool, default True
    onnx_cache : path, optional
        With ``engine="onnx"``: the folder of the ONNX exports of every bundle, segmenters included, named by each
        bundle's weights digest (default :func:`nodescope.models.onnx_cache_dir`); bundle folders are never
        written.

    Raises
    ------
    BundleError, MissingFileError
        For the first bundle that cannot be served (or, with ``engine="onnx"``, exported), naming it.
    """
    models: dict[str, ServedModel] = {}
    singles: dict[str, ClassifierModel] = {}
    cache = Path(onnx_cache) if onnx_cache is not None else onnx_cache_dir()
    for path in bundles:
        b = load_bundle(path)
        mid = _unique(b.name, models)
        thr = b.threshold
        if b.kind == "classifier":
            # no busy-waiting ONNX threads: the event loop and the decoding need the cores between runs
            pred = Predictor(b, engine=engine, threads=threads, batch_size=8,  # type: ignore[arg-type]
                             onnx_spinning=False, onnx_cache_dir=cache)
            m: ServedModel = ClassifierModel(mid, "classifier", b.classes, b.positive_class, thr, (_field_of(b),), b,
                                             predictor=pred)
            if m.fields[0] != "image":
                singles.setdefault(m.fields[0], m)  # type: ignore[arg-type]
        elif b.kind == "fusion":
            mods = tuple(b.meta.modalities or ())
            unknown = [x for x in mods if x not in MODALITY_FIELDS]
            if unknown:
                raise BundleError(f"{b.path / 'model.json'}: modalities {unknown} cannot be uploaded; the service "
                                  f"takes {list(MODALITY_FIELDS[:3])}")
            onnx = (FusionOnnxPredictor(export_fusion_onnx(b, cache_dir=cache), threads=threads, spinning=False,
                                        bundle=b) if engine == "onnx" else None)
            m = FusionModel(mid, "fusion", b.classes, b.positive_class, thr, mods, b, onnx=onnx)
        else:
            raise BundleError(f"{b.path / 'model.json'}: kind {b.kind!r} cannot be served; expected a 'classifier' or "
                              "'fusion' bundle")
        models[mid] = m
    if torch.get_num_threads() != threads:  # torch also prepares inputs, runs fusion bundles and Grad-CAM
        torch.set_num_threads(threads)
    late = _late_fusion(singles, models)
    default = next((k for k, v in models.items() if v.kind == "fusion"), None) or late or next(iter(models))
    seg = _load_segmenter(segmenter, engine, threads, cache) if segmenter else None
    service = ModelService(models, default, "onnx" if engine == "onnx" else "torch", threads, seg)
    if warm:
        service.warm_up()
    return service


def _late_fusion(singles: dict[str, ClassifierModel], models: dict[str, ServedModel]) -> str | None:
    if len(singles) < 2:
        return None
    first = next(iter(singles.values()))
    same = all(m.classes == first.classes and m.positive_class == first.positive_class for m in singles.values())
    if not same:
        log.warning("late fusion not offered: the modality classifiers differ in classes or positive class")
        return None
    mid = _unique("late_mean", models)
    ts = [m.threshold for m in singles.values()]
    binary = len(first.classes) == 2 and first.positive_class is not None
    thr = float(np.mean(np.asarray(ts, dtype=float))) if binary and all(t is not None for t in ts) else None
    models[mid] = LateFusionModel(mid, "late_fusion", first.classes, first.positive_class, thr, tuple(singles),
                                  members=dict(singles))
    return mid


def _load_segmenter(paths: Sequence[str | Path], engine: str, threads: int, cache: Path) -> Any:
    """The segmenters (masks averaged), on the service's engine: with ``onnx`` each is exported into the ONNX cache
    (never into its bundle folder); one that cannot be exported stops start-up with a BundleError naming it."""
    from nodescope.segment import Segmenter

    return Segmenter([Path(p) for p in paths], fusion="mean", engine=engine, threads=threads,
                     onnx_cache_dir=cache, onnx_spinning=False)
