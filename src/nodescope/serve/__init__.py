"""The web service: ``nodescope serve`` (FastAPI + uvicorn), its REST API, the page, and the safety around them.

:func:`load_service` loads the bundles once (a long-lived :class:`~nodescope.models.Predictor` each) and warms them
up; :func:`create_app` builds the FastAPI app on it; :func:`serve` runs it with uvicorn. See docs/serve.md.
"""

from nodescope.serve._app import create_app, model_info
from nodescope.serve._guard import Admission, GuardMiddleware
from nodescope.serve._inference import PredictOptions, run_prediction
from nodescope.serve._run import serve
from nodescope.serve._schemas import (
    RESEARCH_NOTICE,
    ErrorResponse,
    HealthResponse,
    ModalityResult,
    ModelInfo,
    ModelsResponse,
    PredictResponse,
)
from nodescope.serve._service import (
    ClassifierModel,
    FusionModel,
    LateFusionModel,
    ModelService,
    ServedModel,
    load_service,
)
from nodescope.serve._settings import ENV_PREFIX, ServeSettings, load_settings
from nodescope.serve._uploads import DecodedUpload, UploadRejected, decode_upload, deidentify_dicom

__all__ = [
    "ENV_PREFIX",
    "RESEARCH_NOTICE",
    "Admission",
    "ClassifierModel",
    "DecodedUpload",
    "ErrorResponse",
    "FusionModel",
    "GuardMiddleware",
    "HealthResponse",
    "LateFusionModel",
    "ModalityResult",
    "ModelInfo",
    "ModelService",
    "ModelsResponse",
    "PredictOptions",
    "PredictResponse",
    "ServeSettings",
    "ServedModel",
    "UploadRejected",
    "create_app",
    "decode_upload",
    "deidentify_dicom",
    "load_service",
    "load_settings",
    "model_info",
    "run_prediction",
    "serve",
]
