"""One prediction request, run in a worker of the pool: decode, ROI, predict, explain, render.

Pure of HTTP: it takes the uploads' bytes and options and returns a
:class:`~nodescope.serve.PredictResponse`; refusals are :class:`~nodescope.serve._uploads.UploadRejected`.
Grad-CAM (``nodescope.explain``) and automatic ROI (``nodescope.segment``) are used when installed and configured.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodescope.errors import DataError
from nodescope.explain._overlay import display_pixels
from nodescope.serve._schemas import ModalityResult, PredictResponse, RoiOption, Timing
from nodescope.serve._service import ClassifierModel, ModelService, ServedModel, decide
from nodescope.serve._uploads import DecodedUpload, UploadRejected, decode_upload, png_bytes

__all__ = ["PredictOptions", "parse_box", "run_prediction"]

log = logging.getLogger(__name__)

DISPLAY_SIDE = 768


@dataclass(frozen=True)
class PredictOptions:
    """Options of one request: ``explain`` (Grad-CAM), ``roi`` and its ``box`` ``(x0, y0, x1, y1)`` in pixels,
    ``images`` (return each decoded image as PNG: the page shows them, a browser cannot show a DICOM)."""

    explain: bool = False
    images: bool = False
    roi: RoiOption = "none"
    box: tuple[int, int, int, int] | None = None


def parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    """``"x0,y0,x1,y1"`` (pixels of the original image, x1 > x0, y1 > y0) -> a tuple; None passes."""
    if text is None or not text.strip():
        return None
    try:
        vals = tuple(round(float(v)) for v in text.split(","))
    except (ValueError, OverflowError):  # not numbers, nan, inf
        vals = ()
    if len(vals) != 4 or vals[2] <= vals[0] or vals[3] <= vals[1] or min(vals) < 0:
        raise UploadRejected(422, f"box: expected 'x0,y0,x1,y1' in pixels with x1 > x0 >= 0 and y1 > y0 >= 0, "
                                  f"got {text[:60]!r}")
    return vals[0], vals[1], vals[2], vals[3]


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _box_mask(shape: tuple[int, int], box: tuple[int, int, int, int], label: str) -> np.ndarray:
    h, w = shape
    x0, y0, x1, y1 = box
    if x0 >= w or y0 >= h:
        raise UploadRejected(422, f"box: {box} lies outside {label} ({w}x{h} pixels)")
    m = np.zeros((h, w), bool)
    m[y0:min(y1, h), x0:min(x1, w)] = True
    return m


def _contours(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ROI's contour drawn on the image (``nodescope.segment.overlay_contours``)."""
    from nodescope.segment import overlay_contours

    return np.asarray(overlay_contours(image, mask))


def _masks(service: ModelService, decoded: Mapping[str, DecodedUpload], opts: PredictOptions
           ) -> dict[str, np.ndarray | None]:
    out: dict[str, np.ndarray | None] = {}
    for f, up in decoded.items():
        if opts.roi == "box":
            if opts.box is None:
                raise UploadRejected(422, "roi=box needs box='x0,y0,x1,y1'")
            out[f] = _box_mask(up.image.pixels.shape[:2], opts.box, up.label)
        elif opts.roi == "auto":
            if service.segmenter is None:
                raise UploadRejected(422, "roi=auto needs a segmenter: this server was started without --segmenter")
            # a torch network is not re-entrant (the lock); ONNX Runtime sessions run concurrently
            with service.segmenter_lock if service.segmenter.engine == "torch" else nullcontext():
                out[f] = np.asarray(service.segmenter.predict_mask(up.image).mask, bool)
        else:
            out[f] = None
    return out


def _explain(model: ServedModel, decoded: Mapping[str, DecodedUpload], masks: Mapping[str, np.ndarray | None]
             ) -> dict[str, tuple[np.ndarray | None, str | None]]:
    """Grad-CAM overlay (uint8 RGB) of each image, or a note saying why there is none.

    The map explains the class the model predicts (``nodescope.explain`` decides it as ``predict`` does); a fusion
    bundle's maps are computed for the whole unit (the other images are the context, absent ones absent).
    """
    try:
        from nodescope.explain import CamExplainer, overlay_heatmap
    except ImportError:
        return {f: (None, "Grad-CAM is not installed in this server (nodescope.explain)") for f in decoded}
    out: dict[str, tuple[np.ndarray | None, str | None]] = {}
    groups: dict[int, tuple[ServedModel, list[str]]] = {}
    for f in decoded:
        target = model.explain_target(f)
        if target is None:
            out[f] = (None, f"Grad-CAM is not available for a {model.kind} model")
        else:
            groups.setdefault(id(target), (target, []))[1].append(f)
    for target, fields in groups.values():
        owner = getattr(target, "predictor", None) or target.bundle
        if owner is None:  # every explainable model has a network
            continue
        with target.lock, CamExplainer(owner, method="gradcam") as cam:
            if target.kind == "fusion":
                res = cam.explain_unit({f: decoded[f].image for f in fields}, masks={f: masks.get(f) for f in fields})
            else:
                res = {f: cam.explain(decoded[f].image, mask=masks.get(f)) for f in fields}
        for f in fields:
            out[f] = (np.asarray(overlay_heatmap(display_pixels(decoded[f].image), res[f].heatmap, alpha=0.45)), None)
    return out


def _inputs(model: ServedModel, decoded: Mapping[str, DecodedUpload]) -> dict[str, DecodedUpload]:
    """Map the uploads onto the model's fields (a single-image model also reads the generic ``image``)."""
    extra = [f for f in decoded if f not in model.fields]
    if len(model.fields) == 1 and extra == ["image"] and model.fields[0] not in decoded:
        return {model.fields[0]: decoded["image"]}
    if extra:
        raise UploadRejected(422, f"model {model.id!r} reads {list(model.fields)}; unexpected upload(s) {extra}")
    if not decoded:
        raise UploadRejected(422, f"no image: model {model.id!r} reads {list(model.fields)} (one file per field)")
    return dict(decoded)


def _modality_result(model: ServedModel, f: str, up: DecodedUpload, p: np.ndarray | None, mask: np.ndarray | None,
                     cam: tuple[np.ndarray | None, str | None], opts: PredictOptions) -> ModalityResult:
    """One uploaded image's part of the answer; its display pixels are made only when a picture is returned."""
    overlay, note = cam
    img = display_pixels(up.image) if opts.images or mask is not None else None
    heat = _b64(png_bytes(overlay, max_side=DISPLAY_SIDE)) if overlay is not None else None
    roi = _b64(png_bytes(_contours(img, mask), max_side=DISPLAY_SIDE)) if img is not None and mask is not None \
        else None
    return ModalityResult(
        modality=f, width=up.image.width, height=up.image.height, format=up.format,  # type: ignore[arg-type]
        probabilities=dict(zip(model.classes, map(float, p), strict=True)) if p is not None else None,
        predicted_class=decide(p, model.classes, model.positive_class, model.threshold_for((f,)))[0]
        if p is not None else None,
        image_png=_b64(png_bytes(img, max_side=DISPLAY_SIDE)) if img is not None and opts.images else None,
        heatmap_png=heat, roi_png=roi,
        roi_used=mask is not None and any(b.spec.needs_mask for b in _bundles(model)), notes=[note] if note else [])


def run_prediction(service: ModelService, uploads: Mapping[str, bytes], opts: PredictOptions, *,
                   model_id: str | None, max_pixels: int, request_id: str, queued_ms: float = 0.0
                   ) -> tuple[PredictResponse, dict[str, DecodedUpload]]:
    """Run one request: ``uploads`` maps form fields to file contents. Returns the response and the decoded
    uploads (for ``--keep-uploads``)."""
    t0 = time.perf_counter()
    try:
        model = service.get(model_id)
    except ValueError as exc:
        raise UploadRejected(404, str(exc)) from None
    decoded = {f: decode_upload(b, f"upload '{f}'", max_pixels=max_pixels) for f, b in uploads.items()}
    decoded = _inputs(model, decoded)
    masks = _masks(service, decoded, opts)
    needs_roi = [b for b in _bundles(model) if b.spec.needs_mask]
    if needs_roi and opts.roi == "none":
        raise UploadRejected(422, f"model {model.id!r} crops its input to the lesion: send roi=auto or roi=box")
    t1 = time.perf_counter()
    try:
        probs, per = model.predict({f: u.image for f, u in decoded.items()}, masks)
    except (DataError, ValueError) as exc:
        raise UploadRejected(422, f"the image cannot be prepared for model {model.id!r} ({exc})") from None
    t2 = time.perf_counter()
    cams = _explain(model, decoded, masks) if opts.explain else {}
    results = [_modality_result(model, f, up, per.get(f), masks.get(f), cams.get(f, (None, None)), opts)
               for f, up in decoded.items()]
    t3 = time.perf_counter()
    thr = model.threshold_for(tuple(decoded))
    cls, rule = decide(probs, model.classes, model.positive_class, thr)
    total = (t3 - t0) * 1000 + queued_ms
    resp = PredictResponse(
        request_id=request_id, model_id=model.id, classes=list(model.classes),
        probabilities=dict(zip(model.classes, map(float, probs), strict=True)), predicted_class=cls,
        positive_class=model.positive_class, threshold=thr, decision=rule, modalities=results,
        missing_modalities=[f for f in model.fields if f not in decoded and f != "image"],
        engine=service.engine, latency_ms=round(total, 3),
        timing=Timing(queue_ms=round(queued_ms, 3), decode_ms=round((t1 - t0) * 1000, 3),
                      model_ms=round((t2 - t1) * 1000, 3), explain_ms=round((t3 - t2) * 1000, 3),
                      total_ms=round(total, 3)))
    return resp, decoded


def _bundles(model: ServedModel) -> list[Any]:
    if isinstance(model, ClassifierModel) or model.bundle is not None:
        return [model.bundle] if model.bundle is not None else []
    return [m.bundle for m in getattr(model, "members", {}).values() if m.bundle is not None]
