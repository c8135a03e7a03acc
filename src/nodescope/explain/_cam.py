"""Class activation maps of a bundle's network, drawn back onto the original image.

:class:`CamExplainer` wraps pytorch-grad-cam: the bundle's input spec prepares the image exactly as for prediction
(:meth:`nodescope.models.InputSpec.prepare`), the CAM is computed on the model's grid at the backbone layer chosen by
:func:`nodescope.explain.cam_layer`, and :meth:`nodescope.data.ImageTransform.inverse` maps it back onto the original
pixels (crop, padding and resize undone; padding never bleeds in). Hooks live only while the explainer is open::

    with CamExplainer(bundle_or_predictor, method="gradcam") as cam:
        res = cam.explain(image)          # res.heatmap: float32 (H, W) in [0, 1]

Intermediate-fusion bundles (``kind: fusion``) are explained per modality: the map of one modality's image is taken
in that modality's encoder, with the unit's other images (when given) held fixed as context, and the class score is
the fused network's. Two-view classifiers (``input.roi: two-view``) are explained on the ROI view: the map is taken
in the shared backbone's pass over the lesion crop, with the context view's features held fixed, and is drawn back
onto that crop (0 outside it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from nodescope.data import ImageTransform, UltrasoundImage, read_image
from nodescope.errors import BundleError, ConfigError
from nodescope.explain._layers import CamLayer, cam_layer
from nodescope.models import ModelBundle, Predictor, load_bundle

__all__ = ["METHODS", "CamExplainer", "CamMethod", "CamResult"]

CamMethod = Literal["gradcam", "gradcampp", "scorecam", "eigencam", "layercam"]
METHODS: tuple[str, ...] = ("gradcam", "gradcampp", "scorecam", "eigencam", "layercam")
"""CAM methods, by nodescope name: Grad-CAM (Selvaraju et al. 2017), Grad-CAM++ (Chattopadhay et al. 2018),
Score-CAM (Wang et al. 2020), EigenCAM (Muhammad & Yeasin 2020; class-agnostic), LayerCAM (Jiang et al. 2021)."""

_QUIET = threading.Lock()


def _method_class(method: str) -> type:
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM

    classes = {"gradcam": GradCAM, "gradcampp": GradCAMPlusPlus, "scorecam": ScoreCAM, "eigencam": EigenCAM,
               "layercam": LayerCAM}
    if method not in classes:
        import difflib

        close = difflib.get_close_matches(str(method), classes, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"method: unknown CAM method {method!r}.{hint} Valid: {', '.join(METHODS)}")
    return classes[method]


@contextmanager
def _quiet_score_cam() -> Iterator[None]:
    """Score-CAM draws a tqdm progress bar per image; library code must not write to the terminal."""
    from types import SimpleNamespace

    import pytorch_grad_cam.score_cam as sc

    with _QUIET:
        saved = sc.tqdm
        sc.tqdm = SimpleNamespace(tqdm=lambda it, **_: it)
        try:
            yield
        finally:
            sc.tqdm = saved


@dataclass(frozen=True)
class CamResult:
    """One explained image.

    Attributes
    ----------
    heatmap : numpy.ndarray
        float32 ``(H, W)`` at the original image's size, in [0, 1]: the CAM min-max scaled over the pixels the model
        saw (the whole image, or the ROI crop; 0 outside a crop). All zeros when the map is zero everywhere.
    target : int
        Index of the explained class in the bundle's class order.
    target_class : str
    probabilities : numpy.ndarray
        ``(K,)`` the bundle's probabilities for this image (its unit, for fusion), as ``predict`` gives them.
    method : str
    layer : str
        The target layer's name inside the backbone.
    cam : numpy.ndarray
        float32 ``(S, S)`` the map on the model's input grid (padding included), before mapping back.
    transform : ImageTransform
        The geometry from the original image to the model grid.
    modality : str or None
        The explained modality of a fusion bundle (or the bundle's single modality).
    """

    heatmap: np.ndarray
    target: int
    target_class: str
    probabilities: np.ndarray
    method: str
    layer: str
    cam: np.ndarray
    transform: ImageTransform
    modality: str | None = None


class _Normalised(nn.Module):
    """``(N, C, S, S)`` float in [0, 1] -> logits of a classifier bundle's network."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net, self.mean, self.std = net, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


class _FusionBranch(nn.Module):
    """One modality's image -> fused logits, the unit's other modalities held fixed as precomputed features."""

    def __init__(self, net: nn.Module, index: int, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net: Any = net
        self.index, self.mean, self.std = index, mean, std
        self.context: list[torch.Tensor] = []
        fused: Any = net
        self.present = torch.ones(1, len(fused.modalities), dtype=torch.bool)

    def encoder(self) -> nn.Module:
        return self.net.encoders[0 if self.net.shared else self.index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        f = self.encoder()((x - self.mean) / self.std)
        feats = [c.expand(n, -1) for c in self.context]
        feats[self.index] = f
        present = self.present.to(f.dtype).expand(n, -1)
        return self.net.head(torch.cat([*feats, present], dim=1))


class _TwoViewRoi(nn.Module):
    """A two-view classifier's ROI view -> logits, the context view held fixed as its precomputed features."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net: Any = net
        self.mean, self.std = mean, std
        self.context = torch.zeros(1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net.backbone((x - self.mean) / self.std)
        return self.net.head(torch.cat([f, self.context.expand(f.shape[0], -1)], dim=1))


def _as_bundle(model: Predictor | ModelBundle | str | Path) -> ModelBundle:
    if isinstance(model, Predictor):
        return model.bundle
    if isinstance(model, ModelBundle):
        return model
    if isinstance(model, str | Path):
        return load_bundle(model)
    raise TypeError(f"model: expected a Predictor, a ModelBundle or a bundle folder, got {type(model).__name__}")


class CamExplainer:
    """Class activation maps of a classifier or fusion bundle, with the hooks released on exit.

    Parameters
    ----------
    model : Predictor, ModelBundle, str or Path
        A loaded predictor or bundle (shared, not copied) or a bundle folder.
    method : {"gradcam", "gradcampp", "scorecam", "eigencam", "layercam"}, default "gradcam"
    target_layer : torch.nn.Module, optional
        Override the automatic layer (:func:`~nodescope.explain.cam_layer`); a convolutional ``(N, C, h, w)`` map.
    score_batch_size : int, default 32
        Masked copies per forward pass in Score-CAM.

    Notes
    -----
    The network is put in eval mode while the explainer is open (pytorch-grad-cam does so) and each module's
    training flag is restored on exit; parameter gradients the CAM leaves are cleared after every map. A bundle that
    predicts with test-time mirroring (``input.tta``) gets its probabilities, hence the predicted class, the same way;
    the map is of the image as given. Use it in a ``with`` block (or call :meth:`close`).
    """

    def __init__(self, model: Predictor | ModelBundle | str | Path, *, method: CamMethod = "gradcam",
                 target_layer: nn.Module | None = None, score_batch_size: int = 32) -> None:
        self.method_class = _method_class(method)
        self.method: str = method
        self.bundle = _as_bundle(model)
        if self.bundle.kind not in ("classifier", "fusion"):
            raise BundleError(f"bundle {self.bundle.path}: kind {self.bundle.kind!r} has no class scores to explain; "
                              "expected 'classifier' or 'fusion'")
        if int(score_batch_size) < 1:
            raise ConfigError(f"score_batch_size: expected a positive number, got {score_batch_size!r}")
        self.score_batch_size = int(score_batch_size)
        self.net: Any = self.bundle.model
        self._target_layer = target_layer
        self._modes = {m: m.training for m in self.net.modules()}
        self.net.eval()  # dropout and batch statistics off, for the probabilities too; flags restored on close
        self._fresh = [p for p in self.net.parameters() if p.grad is None]
        self.device = next(self.net.parameters()).device
        spec = self.bundle.spec
        self._mean = torch.tensor(list(spec.mean), dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(list(spec.std), dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.fusion = self.bundle.kind == "fusion"
        self.views = spec.views  # two-view: the views are stacked on the channel axis, each normalised alike
        self._mean_x, self._std_x = self._mean.repeat(1, self.views, 1, 1), self._std.repeat(1, self.views, 1, 1)
        network: Any = self.bundle.model
        self.modalities: tuple[str, ...] = tuple(network.modalities) if self.fusion else tuple(
            self.bundle.meta.modalities or ())
        self._cams: dict[int, tuple[Any, nn.Module, CamLayer]] = {}
        self._closed = False

    # ------------------------------------------------------------------------------------------------ lifetime
    def __enter__(self) -> CamExplainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove every hook, restore the modules' training flags and clear the gradients the maps left."""
        for cam, _wrapper, _layer in self._cams.values():
            cam.activations_and_grads.release()
        self._cams.clear()
        for m, flag in self._modes.items():
            m.train(flag)
        self._clear_grads()
        self._closed = True

    def _clear_grads(self) -> None:
        for p in self._fresh:
            p.grad = None

    # ------------------------------------------------------------------------------------------------ pieces
    def _branch(self, index: int) -> tuple[Any, nn.Module, CamLayer]:
        if self._closed:
            raise RuntimeError("CamExplainer is closed; open a new one")
        if index in self._cams:
            return self._cams[index]
        backbone_name = str(self.bundle.meta.architecture.get("backbone"))
        if self.fusion:
            wrapper: nn.Module = _FusionBranch(self.net, index, self._mean, self._std)
            backbone = wrapper.encoder()  # type: ignore[operator]
        elif self.views == 2:
            wrapper = _TwoViewRoi(self.net, self._mean, self._std)
            backbone = self.net.backbone
        else:
            wrapper = _Normalised(self.net, self._mean, self._std)
            backbone = self.net.backbone
        if self._target_layer is not None:
            layer = CamLayer(self._target_layer, type(self._target_layer).__name__)
        else:
            layer = cam_layer(backbone, backbone_name)
        cam = self.method_class(model=wrapper, target_layers=[layer.module], reshape_transform=layer.reshape)
        cam.batch_size = self.score_batch_size  # read by Score-CAM only
        self._cams[index] = (cam, wrapper, layer)
        return self._cams[index]

    def _prepare(self, image: Any, mask: np.ndarray | None) -> tuple[torch.Tensor, ImageTransform]:
        if not isinstance(image, UltrasoundImage | np.ndarray):
            image = read_image(image)
        x, tr = self.bundle.spec.prepare(image, mask=mask)
        return x.to(self.device).float().div_(255.0)[None], tr

    def _probabilities(self, x: torch.Tensor, present: torch.Tensor | None) -> np.ndarray:
        def run(v: torch.Tensor) -> torch.Tensor:
            if self.fusion:
                return self.net((v - self._mean[:, None]) / self._std[:, None], present)
            return self.net((v - self._mean_x) / self._std_x)

        with torch.no_grad():
            logits = run(x)
            if self.bundle.spec.tta:
                logits_m = run(torch.flip(x, dims=[-1]))
                return ((torch.softmax(logits, 1) + torch.softmax(logits_m, 1)) / 2)[0].cpu().numpy()
            return torch.softmax(logits, 1)[0].cpu().numpy()

    def _target(self, target: int | str | None, probs: np.ndarray) -> int:
        classes = self.bundle.classes
        if target is None:
            pos, thr = self.bundle.positive_class, self.bundle.threshold
            if pos is not None and thr is not None and len(classes) == 2:
                k = classes.index(pos)
                return k if probs[k] >= thr else 1 - k
            return int(np.argmax(probs))
        if isinstance(target, str):
            if target not in classes:
                raise ConfigError(f"target: unknown class {target!r}; the bundle's classes are {list(classes)}")
            return classes.index(target)
        if isinstance(target, bool) or not isinstance(target, int | np.integer) or not 0 <= int(target) < len(classes):
            raise ConfigError(f"target: expected a class name or an index in 0..{len(classes) - 1}, got {target!r}")
        return int(target)

    def _run_cam(self, index: int, x: torch.Tensor, k: int) -> tuple[np.ndarray, str]:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cam, _wrapper, layer = self._branch(index)
        with torch.enable_grad():
            if self.method == "scorecam":
                with _quiet_score_cam():
                    grid = cam(input_tensor=x, targets=[ClassifierOutputTarget(k)])
            else:
                grid = cam(input_tensor=x, targets=[ClassifierOutputTarget(k)])
        self._clear_grads()
        return np.asarray(grid[0], dtype=np.float32), layer.name

    def _result(self, grid: np.ndarray, tr: ImageTransform, k: int, probs: np.ndarray, layer: str,
                modality: str | None) -> CamResult:
        heat = tr.inverse(grid, resample="bilinear", fill=0.0)
        t, lft, b, r = tr.crop
        inside = heat[t:b, lft:r]
        lo, hi = float(inside.min()), float(inside.max())
        out = np.zeros(tr.in_shape, np.float32)
        if hi > lo:
            out[t:b, lft:r] = (inside - lo) / (hi - lo)
        return CamResult(heatmap=out, target=k, target_class=self.bundle.classes[k], probabilities=probs,
                         method=self.method, layer=layer, cam=grid, transform=tr, modality=modality)

    # ------------------------------------------------------------------------------------------------ public
    def explain(self, image: UltrasoundImage | np.ndarray | Any, target: int | str | None = None, *,
                mask: np.ndarray | None = None, modality: str | None = None,
                others: Mapping[str, Any] | None = None,
                other_masks: Mapping[str, np.ndarray | None] | None = None) -> CamResult:
        """The class activation map of one image at the original image's size.

        Parameters
        ----------
        image : numpy.ndarray, UltrasoundImage, path or bytes
            The original image, uint8 (or uint16) ``(H, W)`` or ``(H, W, 3)``; paths and bytes are decoded with
            :func:`nodescope.data.read_image`.
        target : int, str or None
            Class index or name to explain; None: the predicted class (binary bundles with an operating threshold:
            ``p_positive >= threshold``, as ``predict`` decides; otherwise the most probable class).
        mask : numpy.ndarray, optional
            The lesion mask, needed when the bundle crops to it (``input.roi``: ``mask`` or ``two-view``; a
            two-view bundle is explained on its ROI view, see the module docstring).
        modality : str, optional
            Fusion bundles: which of the bundle's modalities ``image`` is (required).
        others : mapping, optional
            Fusion bundles: the unit's images of other modalities (``{modality: image}``), used as fixed context;
            modalities not given are absent, as in training with modality dropout.
        other_masks : mapping, optional
            Fusion bundles that crop to the lesion: the masks of ``others``.

        Returns
        -------
        CamResult
        """
        if not self.fusion:
            x, tr = self._prepare(image, mask)
            probs = self._probabilities(x, None)
            k = self._target(target, probs)
            if self.views == 2:  # the ROI view, the context view's features held fixed
                c = self.bundle.spec.channels
                _cam, wrapper, _layer = self._branch(0)
                with torch.no_grad():
                    wrapper.context = self.net.backbone((x[:, c:] - self._mean) / self._std)  # type: ignore[assignment]
                x = x[:, :c]
            grid, layer = self._run_cam(0, x, k)
            single = self.modalities[0] if len(self.modalities) == 1 else None
            return self._result(grid, tr, k, probs, layer, modality or single)
        mod = self._check_modality(modality)
        return self.explain_unit({**(others or {}), mod: image}, target, masks={**(other_masks or {}), mod: mask},
                                 only=mod)[mod]

    def _check_modality(self, modality: str | None) -> str:
        if modality not in self.modalities:
            raise ConfigError(f"modality: this fusion bundle takes {list(self.modalities)}; got {modality!r}")
        return str(modality)

    def explain_unit(self, images: Mapping[str, Any], target: int | str | None = None, *,
                     masks: Mapping[str, np.ndarray | None] | None = None,
                     only: str | None = None) -> dict[str, CamResult]:
        """Fusion bundles: one map per given modality of a unit (a lesion or patient seen in several modalities).

        Parameters
        ----------
        images : mapping
            ``{modality: image}``; modalities of the bundle that are missing are absent for the network.
        target : int, str or None
            As in :meth:`explain`; None explains the unit's predicted class (one target for every modality).
        masks : mapping, optional
            ``{modality: mask}`` for bundles that crop to the lesion.
        only : str, optional
            Explain only this modality (the others are context).

        Returns
        -------
        dict
            ``{modality: CamResult}`` in the bundle's modality order.
        """
        if not self.fusion:
            raise BundleError(f"bundle {self.bundle.path}: kind {self.bundle.kind!r}; explain_unit needs a fusion "
                              "bundle (use explain)")
        for mod in images:
            self._check_modality(mod)
        m = len(self.modalities)
        s, c = self.bundle.spec.image_size, self.bundle.spec.channels
        xs = torch.zeros((1, m, c, s, s), device=self.device)
        present = torch.zeros((1, m), dtype=torch.bool, device=self.device)
        trs: dict[int, ImageTransform] = {}
        for j, mod in enumerate(self.modalities):
            if mod in images:
                xj, trs[j] = self._prepare(images[mod], (masks or {}).get(mod))
                xs[0, j] = xj[0]
                present[0, j] = True
        probs = self._probabilities(xs, present)
        k = self._target(target, probs)
        with torch.no_grad():
            ctx = [(self.net.encoders[0 if self.net.shared else j]((xs[:, j] - self._mean) / self._std)
                    * present[:, j, None]) for j in range(m)]
        out: dict[str, CamResult] = {}
        for j, mod in enumerate(self.modalities):
            if mod not in images or (only is not None and mod != only):
                continue
            _cam, wrapper, _layer = self._branch(j)
            wrapper.context, wrapper.present = ctx, present  # type: ignore[assignment]
            grid, layer = self._run_cam(j, xs[:, j], k)
            out[mod] = self._result(grid, trs[j], k, probs, layer, mod)
        return out

    @property
    def n_hooks(self) -> int:
        """Forward hooks this explainer holds on the network (0 once closed)."""
        return sum(len(cam.activations_and_grads.handles) for cam, _w, _l in self._cams.values())
