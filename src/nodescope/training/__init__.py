"""Training: Lightning module, preloaded-tensor data, ultrasound augmentation, cross-validation, pretraining."""

from nodescope.training._augment import AugmentLevel, UltrasoundAugment
from nodescope.training._calibrate import TemperatureFit, fit_temperature, set_temperature
from nodescope.training._config import TrainConfig, load_config
from nodescope.training._cv import CVResult, auc_summary, run_cv
from nodescope.training._data import (
    ImageDataModule,
    PreloadedImages,
    TensorImageDataset,
    intensity_reference,
    oversample_indices,
    pixel_hash,
    preload_images,
)
from nodescope.training._module import ClassifierModule, channels_last, predict_tensor
from nodescope.training._pretrain import PretrainResult, PretrainTask, run_pretrain
from nodescope.training._progress_callback import ProgressCallback
from nodescope.training._samples import Samples, build_samples, resolve_positive
from nodescope.training._summary import RunSummary, SplitSummary

__all__ = [
    "AugmentLevel",
    "CVResult",
    "ClassifierModule",
    "ImageDataModule",
    "PreloadedImages",
    "PretrainResult",
    "PretrainTask",
    "ProgressCallback",
    "RunSummary",
    "Samples",
    "SplitSummary",
    "TemperatureFit",
    "TensorImageDataset",
    "TrainConfig",
    "UltrasoundAugment",
    "auc_summary",
    "build_samples",
    "channels_last",
    "fit_temperature",
    "intensity_reference",
    "load_config",
    "oversample_indices",
    "pixel_hash",
    "predict_tensor",
    "preload_images",
    "resolve_positive",
    "run_cv",
    "run_pretrain",
    "set_temperature",
]
