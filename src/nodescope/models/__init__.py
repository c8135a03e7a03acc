"""Models: backbone registry (timm), heads, multimodal fusion, pretrained-weight sources, bundles, inference."""

from nodescope.models._bundle import BUNDLE_FORMAT_VERSION, ModelBundle, build_model, load_bundle, save_bundle
from nodescope.models._fusion import IntermediateFusionNet, LateFusionMethod, late_fusion
from nodescope.models._predict import Engine, InferenceModel, OnnxPredictor, export_onnx, predict_proba
from nodescope.models._predict_io import predict_files
from nodescope.models._preprocess import UINT16_RULE, RoiMode, mask_box, prepare_image, stored_bits
from nodescope.models._registry import (
    BACKBONES,
    BackboneSpec,
    ClassifierNet,
    HeadKind,
    build_backbone,
    build_classifier,
    default_normalisation,
    get_backbone_spec,
    list_backbones,
    make_head,
)
from nodescope.models._weights import (
    WeightsInfo,
    WeightsNotFoundError,
    load_weights,
    offline_lite_checkpoint,
    read_state_dict,
)

__all__ = [
    "BACKBONES",
    "BUNDLE_FORMAT_VERSION",
    "UINT16_RULE",
    "BackboneSpec",
    "ClassifierNet",
    "Engine",
    "HeadKind",
    "InferenceModel",
    "IntermediateFusionNet",
    "LateFusionMethod",
    "ModelBundle",
    "OnnxPredictor",
    "RoiMode",
    "WeightsInfo",
    "WeightsNotFoundError",
    "build_backbone",
    "build_classifier",
    "build_model",
    "default_normalisation",
    "export_onnx",
    "get_backbone_spec",
    "late_fusion",
    "list_backbones",
    "load_bundle",
    "load_weights",
    "make_head",
    "mask_box",
    "offline_lite_checkpoint",
    "predict_files",
    "predict_proba",
    "prepare_image",
    "read_state_dict",
    "save_bundle",
    "stored_bits",
]
