"""Pydantic schemas of every request option and response of the service (they make its OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "RESEARCH_NOTICE",
    "ErrorResponse",
    "HealthResponse",
    "InputSpecInfo",
    "ModalityResult",
    "ModelInfo",
    "ModelsResponse",
    "PredictResponse",
    "RoiOption",
    "ThresholdInfo",
    "Timing",
]

#: Shown on the page and returned with every prediction.
RESEARCH_NOTICE = ("Research use only. Not a medical device and not for clinical decisions; the predictions have "
                   "not been validated at your site.")

RoiOption = Literal["none", "auto", "box"]


class ErrorResponse(BaseModel):
    """Any 4xx/5xx answer: the reason, and the request id that the server's log carries too."""

    detail: str = Field(description="What was wrong and what is expected.")
    request_id: str | None = None


class HealthResponse(BaseModel):
    """``GET /api/health``."""

    status: Literal["ok"] = "ok"
    models: int = Field(description="Models loaded and warmed up.")
    engine: Literal["torch", "onnx"]
    workers: int
    threads: int = Field(description="Intra-op threads per worker.")
    in_flight: int = Field(description="Requests being processed or waiting now.")
    capacity: int = Field(description="Requests allowed in flight before 503.")


class ThresholdInfo(BaseModel):
    """The operating threshold of a binary model: ``p_<positive> >= value`` is positive."""

    value: float
    method: str
    chosen_on: str
    rule: str


class InputSpecInfo(BaseModel):
    """What the network sees (the bundle's ``input``)."""

    image_size: int
    channels: int
    mean: list[float]
    std: list[float]
    roi: str = Field(description="'mask': the image is cropped to the lesion; 'two-view': the lesion crop and a "
                                 "context crop around it (both need roi=auto or roi=box).")
    roi_margin: float
    tta: bool
    uint16: str


class ModelInfo(BaseModel):
    """One served model (``GET /api/models``)."""

    id: str
    kind: Literal["classifier", "fusion", "late_fusion"] = Field(
        description="classifier: one image; fusion: intermediate-fusion network; late_fusion: mean of the "
                    "modality classifiers' probabilities.")
    name: str
    classes: list[str]
    positive_class: str | None
    modalities: list[str] = Field(description="Form fields this model reads ('image' for any single image).")
    threshold: ThresholdInfo | None
    input: InputSpecInfo | None
    training: dict[str, Any] = Field(default_factory=dict, description="Training-data summary (model.json).")
    metrics: dict[str, Any] = Field(default_factory=dict, description="metrics.json: computed from saved predictions.")
    synthetic_data: bool
    weights_init: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    created: str | None = None
    members: list[str] = Field(default_factory=list, description="late_fusion: the models averaged.")
    explain: bool = Field(description="Grad-CAM is available for this model.")
    batch: bool = Field(description="The model scores single images (batch mode).")


class ModelsResponse(BaseModel):
    """``GET /api/models``."""

    models: list[ModelInfo]
    default: str
    segmenter: bool = Field(description="roi=auto is available.")
    notice: str = RESEARCH_NOTICE


class ModalityResult(BaseModel):
    """One uploaded image: its own prediction (multimodal models), and the pictures to show."""

    modality: str
    width: int
    height: int
    format: Literal["png", "jpeg", "dicom"]
    probabilities: dict[str, float] | None = Field(
        None, description="This modality alone (late fusion: its classifier; fusion: the network with only it).")
    predicted_class: str | None = None
    image_png: str | None = Field(None, description="The decoded image (base64 PNG, at most 768 px a side), when "
                                                    "images was asked.")
    heatmap_png: str | None = Field(None, description="Grad-CAM overlay (base64 PNG), when explain was asked.")
    roi_png: str | None = Field(None, description="ROI contour overlay (base64 PNG), when roi was auto or box.")
    roi_used: bool = Field(False, description="The ROI cropped the model's input (bundles with input.roi 'mask' "
                                                  "or 'two-view').")
    notes: list[str] = Field(default_factory=list)


class Timing(BaseModel):
    """Milliseconds spent in the server."""

    queue_ms: float = Field(description="Reading the upload and waiting for a worker.")
    decode_ms: float = Field(description="Decoding the uploads and the ROI masks.")
    model_ms: float = Field(description="Preparing the model input (resize, channels) and the forward pass(es).")
    explain_ms: float = Field(description="Grad-CAM and the PNGs returned.")
    total_ms: float


class PredictResponse(BaseModel):
    """``POST /api/predict``."""

    request_id: str
    model_id: str
    classes: list[str]
    probabilities: dict[str, float]
    predicted_class: str
    positive_class: str | None
    threshold: float | None = Field(description="The bundle's operating threshold (None: most probable class).")
    decision: str = Field(description="How predicted_class was decided, in words.")
    modalities: list[ModalityResult]
    missing_modalities: list[str]
    engine: Literal["torch", "onnx"]
    latency_ms: float
    timing: Timing
    notice: str = RESEARCH_NOTICE
