"""The training configuration (YAML in, validated, saved resolved beside every run)."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types as at
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from nodescope.errors import ConfigError, MissingFileError

__all__ = ["RECIPES", "TrainConfig", "allowed_values", "check_accelerator", "check_value", "load_config"]

#: Named presets of :attr:`TrainConfig.recipe`: field -> value, used for every field the configuration does not set.
#: ``transfer`` is the combination measured in docs/benchmarks.md ("Train on BUSI, test at another centre", issue #14):
#: the appearance steps that remove what differs between scanners and sites (scan-region crop, tint-robust grey,
#: percentile intensity stretch, caliper/annotation marks inpainted), the ultrasound augmentation (depth/zoom,
#: time-gain curves, blur, synthetic calipers), test-time mirroring and temperature scaling on the out-of-fold rows.
RECIPES: dict[str, dict[str, Any]] = {
    "none": {},
    "transfer": {"scan_crop": True, "grey": "tint", "intensity": "percentile", "marks": "inpaint", "aug_depth": 0.2,
                 "aug_tgc": 0.3, "aug_blur": 1.0, "aug_calipers": 0.3, "tta": True, "calibrate": "temperature"},
}
_AUG_EXTRAS = ("aug_depth", "aug_tgc", "aug_blur", "aug_calipers")


class TrainConfig(BaseModel):
    """Everything ``nodescope train`` needs; every field has a CLI flag of the same name (``-`` for ``_``).

    The flags are generated from the fields (type, default, ``description`` as help, constraints checked when the
    command line is parsed): a new field is a new flag. ``json_schema_extra={"cli": False}`` keeps a field off the
    command line (``synthetic_data``, set by the demo).

    Preset: ``recipe`` (transfer, the default | none: the fields of :data:`RECIPES` that the configuration does not
    set; the resolved values are what config.yaml records; ``none`` gives every step below its own default).
    Data: ``manifest`` (+ ``external`` manifests scored as external test sets), ``classes`` (subset/order; rows of
    other classes are left out and counted in the log and the run summary), ``positive`` (binary tasks),
    ``group_col`` (``patient_id``; e.g. ``dup_group`` for BUSI), ``modality`` (keep rows of one modality),
    ``modalities`` + ``fusion="intermediate"`` (one input per modality per unit ``unit_cols``).
    Split: ``folds`` (stratified group k-fold), ``cv`` (``kfold``, or ``leave-one-site-out``: every fold is one
    whole site of the manifest column ``site_col``, so each fold model is tested on a site it never saw),
    ``test_size`` (hold-out test part of the groups),
    ``splits_file`` (reuse a run's splits.csv so several runs share folds), ``val_fraction`` (inner validation
    groups of each training fold, for early stopping and checkpoint selection).
    Model: ``backbone``, ``weights`` (none | imagenet | path), ``head``, ``hidden``, ``dropout``, ``channels``,
    ``image_size``, ``roi`` (none | mask | two-view: the mask crop and a context crop of ``context_scale`` x its box,
    through one shared backbone), ``roi_margin``, ``context_scale``; appearance steps recorded in the bundle's input spec:
    ``scan_crop``, ``grey`` (auto | tint), ``intensity`` (none | percentile | clahe | match), ``marks`` (keep | inpaint).
    Optimisation: ``epochs``, ``batch_size``, ``optimizer`` (adamw | adam), ``lr``, ``weight_decay``, ``scheduler``
    (cosine | step | none), ``step_size``, ``gamma``, ``patience`` (early stopping on val loss; 0 = off),
    ``imbalance`` (none | oversample | class_weights), ``augment`` (none | light | standard), ultrasound extras
    ``aug_depth``, ``aug_tgc``, ``aug_blur``, ``aug_calipers`` (0 = off), ``mixup`` (Beta parameter, 0 = off),
    ``site_balance`` (multi-source training: (site, class) cells sampled equally), ``weight_averaging``
    (none | swa | ema) and ``ema_decay``, ``calibrate`` (none | temperature: a logit temperature fitted on the
    pooled out-of-fold predictions, set in every bundle before the threshold is chosen),
    ``modality_dropout`` (fusion).
    Runtime: ``seed``, ``deterministic``, ``devices``, ``accelerator``, ``strategy``, ``precision`` (auto = 16-mixed
    on GPU, 32 on CPU), ``num_threads``, ``final_model`` (refit on all development data | none = fold-model mean for
    test rows), ``tta``, ``resume``, ``overwrite`` (replace an earlier run in ``out``, removing only its own files),
    ``keep_checkpoints`` (keep Lightning checkpoints of finished folds; off: only bundles stay), ``tensorboard``
    (TensorBoard event files beside the CSV logs, ``<fold>/logs/tensorboard``), ``allow_pretrain_overlap``,
    ``max_pixels`` (refuse images above this many pixels, checked from the header before decoding; default 100
    megapixels or ``$NODESCOPE_MAX_PIXELS``).
    """

    model_config = ConfigDict(extra="forbid")

    # data
    manifest: Path = Field(description="manifest.csv of the development data")
    out: Path = Field(description="run directory")
    name: str = Field("model", description="model name (predictions' model column)")
    external: list[Path] = Field(default_factory=list, description="external test manifest (repeatable)")
    recipe: Literal["none", "transfer"] = Field(
        "transfer", description="transfer (the ultrasound default, for use at other centres: scan crop, tint-robust "
                                "grey, percentile intensity, marks inpainted, ultrasound augmentation, TTA, "
                                "temperature scaling) | none (plain: MRI/CT slices, or to set every step yourself); "
                                "options given explicitly win")
    classes: list[str] | None = Field(None, description="comma list: classes to use, in order")
    positive: str | None = Field(None, description="positive class of a binary task")
    group_col: str = Field("patient_id", description="grouping column for splits (patient_id)")
    modality: str | None = Field(None, description="keep rows of this modality only")
    modalities: list[str] | None = Field(None, description="comma list, for fusion intermediate")
    fusion: Literal["none", "intermediate"] = Field("none", description="none | intermediate")
    unit_cols: list[str] = Field(default_factory=lambda: ["patient_id", "lesion_id"],
                                 description="comma list: columns naming one unit (node) for fusion intermediate")

    # split
    folds: int = Field(5, ge=2, description="cross-validation folds")
    cv: Literal["kfold", "leave-one-site-out"] = Field(
        "kfold", description="kfold | leave-one-site-out (one fold per site of site_col; folds unused)")
    site_col: str = Field("site", description="manifest column naming the site (leave-one-site-out)")
    test_size: float = Field(0.0, ge=0.0, lt=1.0, description="hold-out test fraction of the groups")
    splits_file: Path | None = Field(None, description="reuse a run's splits.csv")
    val_fraction: float = Field(0.15, ge=0.0, lt=1.0, description="inner validation fraction (early stopping)")

    # model
    backbone: str = Field("tf_efficientnet_lite0", description="registered backbone name")
    weights: str = Field("none", description="none | imagenet | PATH (file or bundle)")
    head: Literal["mlp", "linear"] = Field("mlp", description="mlp | linear")
    hidden: int = Field(256, ge=1, description="MLP head hidden units")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="head dropout")
    channels: Literal[1, 3] = Field(3, description="1 or 3 input channels")
    image_size: int = Field(224, ge=1, description="input side in pixels")
    roi: Literal["none", "mask", "two-view"] = Field(
        "none", description="none | mask (crop to the mask box) | two-view (the mask crop and a context crop, one "
                            "shared backbone; ~2x compute)")
    roi_margin: float = Field(0.1, ge=0.0, allow_inf_nan=False, description="margin around the mask box, x box side")
    context_scale: float = Field(3.0, ge=0.0, le=100.0, allow_inf_nan=False,
                                 description="two-view: context box = ROI box x this factor about its centre, "
                                             "clipped to the image (0 = the whole image; else >= 1)")
    scan_crop: bool = Field(False, description="crop every image to its scan region first (UI, text, rulers cut away)")
    grey: Literal["auto", "tint"] = Field("auto", description="auto | tint (colour-tinted grey images made grey; "
                                                              "colour Doppler kept)")
    intensity: Literal["none", "percentile", "clahe", "match"] = Field(
        "none", description="none | percentile (1-99 % stretch) | clahe | match (histogram matching to the "
                            "training images' mean quantiles, recorded in the bundle)")
    marks: Literal["keep", "inpaint"] = Field("keep", description="keep | inpaint (caliper and annotation marks "
                                                                  "filled in from their surroundings)")

    # optimisation
    epochs: int = Field(30, ge=1, description="training epochs per fold")
    batch_size: int = Field(32, ge=1, description="images per batch")
    optimizer: Literal["adamw", "adam"] = Field("adamw", description="adamw | adam")
    lr: float = Field(3e-4, gt=0.0, allow_inf_nan=False, description="learning rate")
    weight_decay: float = Field(1e-4, ge=0.0, allow_inf_nan=False, description="weight decay")
    scheduler: Literal["cosine", "step", "none"] = Field("cosine", description="cosine | step | none")
    step_size: int = Field(10, ge=1, description="step schedule: epochs per step")
    gamma: float = Field(0.1, gt=0.0, allow_inf_nan=False, description="step schedule: lr factor per step")
    patience: int = Field(5, ge=0, description="early-stopping patience (0 = off)")
    imbalance: Literal["none", "oversample", "class_weights"] = Field(
        "oversample", description="none | oversample | class_weights")
    augment: Literal["none", "light", "standard"] = Field("standard", description="none | light | standard")
    modality_dropout: float = Field(0.2, ge=0.0, lt=1.0, description="fusion: chance to drop a modality")
    aug_depth: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="augmentation: max extra zoom anchored "
                                                                           "at the top edge (depth setting; 0 = off)")
    aug_tgc: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="augmentation: strength of random "
                                                                         "time-gain-compensation curves (0 = off)")
    aug_blur: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="augmentation: max Gaussian blur sigma, "
                                                                          "pixels (0 = off)")
    aug_calipers: float = Field(0.0, ge=0.0, le=1.0, description="augmentation: chance of synthetic caliper marks "
                                                                 "(0 = off)")
    mixup: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="mixup Beta(a, a) parameter (0 = off)")
    weight_averaging: Literal["none", "swa", "ema"] = Field(
        "none", description="none | swa (mean of the last quarter's epoch weights) | ema (per-step moving average)")
    ema_decay: float = Field(0.999, gt=0.0, lt=1.0, description="ema: decay per optimizer step")
    calibrate: Literal["none", "temperature"] = Field(
        "none", description="none | temperature (one logit temperature fitted on the pooled out-of-fold "
                            "predictions, set in every bundle)")
    site_balance: bool = Field(False, description="sample every (site, class) cell equally often (manifest 'site' "
                                                  "column with >= 2 training sites)")

    # runtime
    seed: int = Field(0, ge=0, description="seed of splits, sampling and initialisation")
    deterministic: bool = Field(False, description="deterministic algorithms (slower)")
    devices: int = Field(1, ge=1, description="devices (processes) to train on")
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"] = Field(
        "auto", description="auto | cpu | gpu | cuda | mps | tpu")
    strategy: str = Field("auto", description="auto | ddp | ...")
    precision: str = Field("auto", description="auto | 32-true | 16-mixed | bf16-mixed")
    channels_last: bool = Field(True, description="train with the convolution weights in channels-last layout "
                                                  "(faster on CPUs; same results up to float rounding)")
    num_threads: int | None = Field(None, ge=1, description="CPU threads (default: the cores available)")
    final_model: Literal["refit", "none"] = Field("refit", description="refit | none")
    tta: bool = Field(False, description="test-time augmentation: average with the mirrored image")
    resume: bool = Field(False, description="continue an interrupted run in the run directory")
    overwrite: bool = Field(False, description="replace the run in the run directory (removes only its own "
                                               "config.yaml, splits.csv, folds/, final/, predictions.csv, "
                                               "summary.json)")
    keep_checkpoints: bool = Field(False, description="keep Lightning checkpoints of finished folds")
    tensorboard: bool = Field(False, description="also write TensorBoard logs")
    allow_pretrain_overlap: bool = Field(False, description="warn instead of refusing when pretraining saw "
                                                            "experiment images")
    max_pixels: int | None = Field(None, ge=1, description="refuse images with more pixels, read from the header "
                                                           "(default 100000000, or $NODESCOPE_MAX_PIXELS)")
    synthetic_data: bool = Field(False, description="the data are synthetic (marks bundles and reports)",
                                 json_schema_extra={"cli": False})

    @model_validator(mode="before")
    @classmethod
    def _recipe(cls, data: Any) -> Any:
        """Fill the recipe's fields that the configuration leaves unset (explicit values win)."""
        if not isinstance(data, dict):
            return data
        data = {**data, "recipe": data.get("recipe") or cls.model_fields["recipe"].default}  # needed before validation
        if data["recipe"] not in RECIPES:
            return data  # refused by the field's own validation, naming the allowed values
        out = dict(data)
        for k, v in RECIPES[str(data["recipe"])].items():
            if k in _AUG_EXTRAS and out.get("augment") == "none":
                continue  # no augmentation asked for: the recipe adds none
            if k == "calibrate" and out.get("fusion") == "intermediate":
                continue  # temperature scaling is for single-input classifiers
            out.setdefault(k, v)
        return out

    @model_validator(mode="after")
    def _fusion(self) -> TrainConfig:
        if self.fusion == "intermediate" and (not self.modalities or len(self.modalities) < 2):
            raise ValueError("fusion='intermediate' needs modalities with at least 2 names")
        extras = {k: getattr(self, k) for k in _AUG_EXTRAS}
        if self.augment == "none" and any(v > 0 for v in extras.values()):
            on = ", ".join(k for k, v in extras.items() if v > 0)
            raise ValueError(f"{on} add to the augmentation, but augment is 'none'; use augment light or standard")
        if self.intensity == "match" and self.fusion == "intermediate":
            raise ValueError("intensity 'match' is for single-image models; it cannot be combined with "
                             "fusion='intermediate'")
        if self.roi == "two-view" and 0 < self.context_scale < 1:
            raise ValueError(f"context_scale: expected 0 (the whole image) or a value >= 1 (a context view around "
                             f"the ROI view), got {self.context_scale}")
        if self.roi == "two-view" and (self.intensity == "match" or self.fusion == "intermediate"):
            raise ValueError("roi 'two-view' cannot be combined with intensity 'match' (its reference is of one "
                             "view) or fusion='intermediate'")
        if self.calibrate != "none" and self.fusion == "intermediate":
            raise ValueError("calibrate 'temperature' is for single-input classifiers; it cannot be combined with "
                             "fusion='intermediate'")
        if self.mixup > 0 and self.fusion == "intermediate":
            raise ValueError("mixup is for single-image models; it cannot be combined with fusion='intermediate'")
        if self.fusion == "intermediate" and self.modality:
            raise ValueError("modality (one modality) and fusion='intermediate' exclude each other")
        if self.splits_file is not None and self.test_size > 0:
            raise ValueError(f"test_size={self.test_size} would be ignored: splits_file {self.splits_file} fixes the "
                             "part of every group (its 'test' part is the hold-out); pass test_size=0 with splits_file")
        return self

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json")
        return yaml.safe_dump(data, sort_keys=False)


def check_accelerator(name: str) -> None:
    """Refuse an accelerator whose hardware this machine lacks (``auto`` and ``cpu`` always work).

    Parameters
    ----------
    name : str
        A value of :attr:`TrainConfig.accelerator`.

    Raises
    ------
    ConfigError
        Naming the accelerator and what is missing.
    """
    import torch

    if name in ("gpu", "cuda"):
        ok, what = torch.cuda.is_available(), "no CUDA GPU is visible to PyTorch"
    elif name == "mps":
        ok, what = torch.backends.mps.is_available(), "Apple MPS is not available"
    elif name == "tpu":
        try:
            from lightning.pytorch.accelerators import XLAAccelerator

            ok = bool(XLAAccelerator.is_available())
        except ImportError:
            ok = False
        what = "no TPU (torch_xla) is available"
    else:
        return
    if not ok:
        raise ConfigError(f"accelerator: {name!r} cannot be used on this machine: {what}; use 'auto' or 'cpu'")


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _literal_choices(annotation: Any) -> tuple[Any, ...]:
    return get_args(annotation) if get_origin(annotation) is Literal else ()


def allowed_values(name: str) -> str:
    """What a :class:`TrainConfig` field accepts, in words (for messages and help).

    Parameters
    ----------
    name : str
        A field of :class:`TrainConfig`.

    Returns
    -------
    str
        E.g. ``"> 0"``, ``"in [0, 1)"``, ``">= 2"``, ``"one of 'mlp', 'linear'"``; ``""`` when any value of the
        field's type is allowed.
    """
    field = TrainConfig.model_fields[name]
    choices = _literal_choices(field.annotation)
    if choices:
        return "one of " + ", ".join(repr(c) for c in choices)
    lo = hi = ""
    for m in field.metadata:
        if isinstance(m, at.Gt):
            lo = f"({_num(m.gt)}"
        elif isinstance(m, at.Ge):
            lo = f"[{_num(m.ge)}"
        elif isinstance(m, at.Lt):
            hi = f"{_num(m.lt)})"
        elif isinstance(m, at.Le):
            hi = f"{_num(m.le)}]"
    if lo and hi:
        return f"in {lo}, {hi}"
    if lo:
        return ("> " if lo[0] == "(" else ">= ") + lo[1:]
    if hi:
        return ("< " if hi[-1] == ")" else "<= ") + hi[:-1]
    return ""


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    field = TrainConfig.model_fields[name]
    if not field.metadata:
        return TypeAdapter(field.annotation)
    return TypeAdapter(Annotated[field.annotation, *field.metadata])  # type: ignore[valid-type]


def _explain(name: str, value: Any, errors: list[Any]) -> str:
    """``name: must be <allowed>, got <value>`` for the errors of one field."""
    kinds = {e["type"] for e in errors}
    allowed = allowed_values(name) if name in TrainConfig.model_fields else ""
    if kinds & {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
                "literal_error"} and allowed:
        what = f"a finite number {allowed}" if "finite_number" in kinds else allowed
        return f"{name}: must be {what}, got {value!r}"
    msg = str(errors[0]["msg"]).replace("Input should be", "must be").replace("Value error, ", "")
    return f"{name}: {msg}, got {value!r}"


def check_value(name: str, value: Any) -> Any:
    """Validate (and convert) one :class:`TrainConfig` value on its own.

    Parameters
    ----------
    name : str
        The field.
    value : Any
        Its value, e.g. parsed from a command line.

    Returns
    -------
    Any
        The value as the configuration stores it (e.g. ``"3"`` -> ``3`` for ``channels``).

    Raises
    ------
    ConfigError
        ``name`` is not a field, or ``value`` is outside what the field allows; the message names the field, the
        allowed values and the value (``lr: must be a finite number > 0, got inf``).
    """
    if name not in TrainConfig.model_fields:
        raise ConfigError(f"{name}: not a training configuration key")
    try:
        return _adapter(name).validate_python(value)
    except ValidationError as exc:
        raise ConfigError(_explain(name, value, exc.errors())) from None


def _describe(exc: ValidationError, data: dict[str, Any], source: Path | None, from_file: set[str]) -> str:
    """One line for all the problems of a validation: each names its key, what is allowed and the value."""
    parts = []
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else ""
        where = f"{source}: " if source is not None and (key in from_file or not key) else ""
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, list(TrainConfig.model_fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            parts.append(f"{where}{key}: not a training configuration key{hint}")
        elif err["type"] == "missing":
            parts.append(f"{where}{key}: required, not given")
        elif not key:
            parts.append(where + str(err["msg"]).replace("Value error, ", ""))
        else:
            parts.append(where + _explain(key, data.get(key, err.get("input")), [err]))
    return "; ".join(parts)


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Read a YAML config (optional), apply ``overrides`` (``None`` values ignored) and validate.

    Parameters
    ----------
    path : str or Path, optional
        A YAML file holding a mapping of :class:`TrainConfig` keys.
    **overrides
        Values that replace the file's (``None``: keep the file's value or the default).

    Returns
    -------
    TrainConfig
        The validated configuration.

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    ConfigError
        The file is not a YAML mapping, or a key or value is not allowed; the message names the file (for keys
        from the file), the key, the allowed values and the value given.
    """
    data: dict[str, Any] = {}
    source = None
    if path is not None:
        source = Path(path)
        if not source.is_file():
            raise MissingFileError(f"config: {source} not found")
        try:
            loaded = yaml.safe_load(source.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at_line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ConfigError(f"config: {source} is not valid YAML{at_line}: {problem}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config: {source} must hold a mapping, got {type(loaded).__name__}")
        data.update(loaded)
    given = {k: v for k, v in overrides.items() if v is not None}
    from_file = set(data) - set(given)
    data.update(given)
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, source, from_file)) from None
