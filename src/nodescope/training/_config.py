"""The training configuration (YAML in, validated, saved resolved beside every run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["TrainConfig", "load_config"]


class TrainConfig(BaseModel):
    """Everything ``nodescope train`` needs; every field has a CLI flag of the same name (``-`` for ``_``).

    Data: ``manifest`` (+ ``external`` manifests scored as external test sets), ``classes`` (subset/order; rows of
    other classes are left out and counted in the log and the run summary), ``positive`` (binary tasks),
    ``group_col`` (``patient_id``; e.g. ``dup_group`` for BUSI), ``modality`` (keep rows of one modality),
    ``modalities`` + ``fusion="intermediate"`` (one input per modality per unit ``unit_cols``).
    Split: ``folds`` (stratified group k-fold), ``test_size`` (hold-out test part of the groups),
    ``splits_file`` (reuse a run's splits.csv so several runs share folds), ``val_fraction`` (inner validation
    groups of each training fold, for early stopping and checkpoint selection).
    Model: ``backbone``, ``weights`` (none | imagenet | path), ``head``, ``hidden``, ``dropout``, ``channels``,
    ``image_size``, ``roi`` (none | mask), ``roi_margin``.
    Optimisation: ``epochs``, ``batch_size``, ``optimizer`` (adamw | adam), ``lr``, ``weight_decay``, ``scheduler``
    (cosine | step | none), ``step_size``, ``gamma``, ``patience`` (early stopping on val loss; 0 = off),
    ``imbalance`` (none | oversample | class_weights), ``augment`` (none | light | standard),
    ``modality_dropout`` (fusion).
    Runtime: ``seed``, ``deterministic``, ``devices``, ``accelerator``, ``strategy``, ``precision`` (auto = 16-mixed
    on GPU, 32 on CPU), ``num_threads``, ``final_model`` (refit on all development data | none = fold-model mean for
    test rows), ``tta``, ``resume``, ``keep_checkpoints`` (keep Lightning checkpoints of finished folds; off: only
    bundles stay), ``tensorboard`` (TensorBoard event files beside the CSV logs, ``<fold>/logs/tensorboard``),
    ``allow_pretrain_overlap``.
    """

    model_config = ConfigDict(extra="forbid")

    manifest: Path
    out: Path
    name: str = "model"
    external: list[Path] = Field(default_factory=list)
    classes: list[str] | None = None
    positive: str | None = None
    group_col: str = "patient_id"
    modality: str | None = None
    modalities: list[str] | None = None
    fusion: Literal["none", "intermediate"] = "none"
    unit_cols: list[str] = Field(default_factory=lambda: ["patient_id", "lesion_id"])

    folds: int = 5
    test_size: float = 0.0
    splits_file: Path | None = None
    val_fraction: float = 0.15

    backbone: str = "tf_efficientnet_lite0"
    weights: str = "none"
    head: Literal["mlp", "linear"] = "mlp"
    hidden: int = 256
    dropout: float = 0.2
    channels: Literal[1, 3] = 3
    image_size: int = 224
    roi: Literal["none", "mask"] = "none"
    roi_margin: float = 0.1

    epochs: int = 30
    batch_size: int = 32
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 3e-4
    weight_decay: float = 1e-4
    scheduler: Literal["cosine", "step", "none"] = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    patience: int = 5
    imbalance: Literal["none", "oversample", "class_weights"] = "oversample"
    augment: Literal["none", "light", "standard"] = "standard"
    modality_dropout: float = 0.2

    seed: int = 0
    deterministic: bool = False
    devices: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None
    final_model: Literal["refit", "none"] = "refit"
    tta: bool = False
    resume: bool = False
    keep_checkpoints: bool = False
    tensorboard: bool = False
    allow_pretrain_overlap: bool = False
    synthetic_data: bool = False

    @field_validator("folds")
    @classmethod
    def _folds(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"folds: expected >= 2, got {v}")
        return v

    @field_validator("test_size", "val_fraction", "dropout", "modality_dropout")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError(f"expected a fraction in [0, 1), got {v}")
        return v

    @field_validator("epochs", "batch_size", "image_size", "hidden", "devices")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"expected a positive integer, got {v}")
        return v

    @model_validator(mode="after")
    def _fusion(self) -> TrainConfig:
        if self.fusion == "intermediate" and (not self.modalities or len(self.modalities) < 2):
            raise ValueError("fusion='intermediate' needs modalities with at least 2 names")
        if self.fusion == "intermediate" and self.modality:
            raise ValueError("modality (one modality) and fusion='intermediate' exclude each other")
        if self.splits_file is not None and self.test_size > 0:
            raise ValueError(f"test_size={self.test_size} would be ignored: splits_file {self.splits_file} fixes the "
                             "part of every group (its 'test' part is the hold-out); pass test_size=0 with splits_file")
        return self

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json")
        return yaml.safe_dump(data, sort_keys=False)


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Read a YAML config (optional) and apply ``overrides`` (``None`` values ignored); validate."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config: {p} not found")
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config: {p} must hold a mapping, got {type(loaded).__name__}")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**data)
