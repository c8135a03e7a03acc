"""The FastAPI application: routes, the bounded worker pool, the page.

Route handlers stay thin: they read the uploads (in memory), hand the work to the worker pool
(:func:`~nodescope.serve._inference.run_prediction`, :func:`~nodescope.serve._batch.run_batch`) and turn refusals
into 4xx answers with a reason. The pool has ``workers`` threads: requests beyond it wait in the admission queue
(:mod:`nodescope.serve._guard`), never on a thread of their own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from nodescope.serve._batch import iter_zip, run_batch
from nodescope.serve._guard import Admission, GuardMiddleware
from nodescope.serve._inference import PredictOptions, parse_box, run_prediction
from nodescope.serve._schemas import (
    RESEARCH_NOTICE,
    ErrorResponse,
    HealthResponse,
    InputSpecInfo,
    ModelInfo,
    ModelsResponse,
    PredictResponse,
    RoiOption,
    ThresholdInfo,
)
from nodescope.serve._service import ModelService, ServedModel
from nodescope.serve._settings import ServeSettings
from nodescope.serve._uploads import UploadRejected, keep_upload, quiet_dicom_logging

__all__ = ["STATIC", "create_app", "model_info"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (401, 404, 413, 415, 422, 503)}


def model_info(m: ServedModel) -> ModelInfo:
    """The :class:`ModelInfo` of a served model (from its bundle's model.json and metrics.json)."""
    b = m.bundle
    meta = b.meta if b is not None else None
    thr = meta.threshold if meta is not None else None
    thr_info = ThresholdInfo(**thr.to_dict()) if thr else None
    if meta is None and m.threshold is not None:  # late fusion: see LateFusionModel
        thr_info = ThresholdInfo(
            value=m.threshold, method="mean of the members' thresholds",
            chosen_on="each member's own validation data (not re-chosen on fused predictions)",
            rule=f"p_{m.positive_class} >= the mean of the thresholds of the modalities given")
    spec = b.spec if b is not None else None
    members = list(getattr(m, "members", {}).values())
    return ModelInfo(
        id=m.id, kind=m.kind, name=meta.name if meta else m.id, classes=list(m.classes),  # type: ignore[arg-type]
        positive_class=m.positive_class, modalities=list(m.fields),
        threshold=thr_info,
        input=InputSpecInfo(image_size=spec.image_size, channels=spec.channels, mean=list(spec.mean),
                            std=list(spec.std), roi=spec.roi, roi_margin=spec.roi_margin, tta=spec.tta,
                            uint16=spec.uint16) if spec else None,
        training=dict(meta.training) if meta else {"late_fusion": "mean of " + ", ".join(x.id for x in members)},
        metrics=dict(b.metrics) if b is not None else {},
        synthetic_data=bool(meta.synthetic_data) if meta else any(x.bundle.meta.synthetic_data for x in members
                                                                  if x.bundle is not None),
        weights_init=dict(meta.weights_init) if meta else {}, versions=dict(meta.versions) if meta else {},
        created=meta.created if meta else None, members=[x.id for x in members],
        explain=True, batch=m.kind == "classifier")


def _error(status: int, detail: str, request: Request, headers: Mapping[str, str] | None = None) -> JSONResponse:
    rid = getattr(request.state, "request_id", None)
    return JSONResponse({"detail": detail, "request_id": rid}, status_code=status,
                        headers=dict(headers) if headers else None)


def create_app(settings: ServeSettings, service: ModelService) -> FastAPI:
    """The service as a FastAPI app (for uvicorn or ``TestClient``); ``service`` is already loaded and warm.

    Parameters
    ----------
    settings : ServeSettings
    service : ModelService
        From :func:`~nodescope.serve.load_service`.
    """
    from starlette.formparsers import MultiPartParser

    # uploads stay in memory: starlette spools files above 1 MiB to a temporary file on disk otherwise
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, settings.max_upload_bytes + 1)
    quiet_dicom_logging()
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="nodescope-infer")
    admission = Admission(capacity=settings.workers + settings.queue, workers=settings.workers)
    if settings.keep_uploads is not None:
        settings.keep_uploads.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=True)  # uvicorn has drained the requests in flight by now

    app = _ServiceApp(title="nodescope", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                      openapi_url="/api/openapi.json",
                      description="Lymph-node metastasis prediction from ultrasound images. " + RESEARCH_NOTICE)
    app.state.service, app.state.settings, app.state.admission = service, settings, admission

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 413:
            detail = f"the request body exceeds this server's limit of {settings.max_upload_bytes:,} bytes"
        return _error(exc.status_code, detail, request, exc.headers)

    @app.exception_handler(UploadRejected)
    async def rejected(request: Request, exc: UploadRejected) -> JSONResponse:
        return _error(exc.status, exc.reason, request)

    _add_routes(app, service, settings, admission, pool)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.guard = partial(GuardMiddleware, admission=admission,
                        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                        max_body=settings.max_upload_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.cors = partial(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["x-api-key", "authorization", "x-request-id"])
    return app


class _ServiceApp(FastAPI):
    """FastAPI with the guard (and CORS) outside its own middleware stack: a request over the admission bound is
    answered before FastAPI's error, telemetry and body-limit layers or its router see it."""

    guard: Any = None
    cors: Any = None

    def build_middleware_stack(self) -> Any:
        stack = super().build_middleware_stack()
        if self.guard is not None:
            stack = self.guard(stack)
        return self.cors(stack) if self.cors is not None else stack


def _add_routes(app: FastAPI, service: ModelService, settings: ServeSettings, admission: Admission,
                pool: ThreadPoolExecutor) -> None:
    """The routes: health, models, predict, batch and the page."""
    keep = settings.keep_uploads

    async def in_pool(fn: Any) -> Any:
        ctx = contextvars.copy_context()  # the request id follows the work into the worker (log lines)
        return await asyncio.get_running_loop().run_in_executor(pool, ctx.run, fn)

    @app.get("/api/health", response_model=HealthResponse, tags=["service"])
    async def health() -> HealthResponse:
        """Liveness: the models are loaded and warm."""
        return HealthResponse(models=len(service.models), engine=service.engine,
                              workers=settings.workers, threads=service.threads, in_flight=admission.in_flight,
                              capacity=admission.capacity)

    @app.get("/api/models", response_model=ModelsResponse, responses=_ERRORS, tags=["models"])
    async def models() -> ModelsResponse:
        """The served models: classes, modalities, threshold, input spec, training summary, metrics, versions."""
        return ModelsResponse(models=[model_info(m) for m in service.models.values()], default=service.default,
                              segmenter=service.segmenter is not None)

    limit = settings.max_upload_bytes  # declared bodies: the guard; streamed ones: FastAPI's per-route limit

    @app.post("/api/predict", response_model=PredictResponse, responses=_ERRORS, tags=["predict"],
              max_body_size=limit)
    async def predict(
        request: Request,
        bmode: Annotated[UploadFile | None, File(description="B-mode image (PNG, JPEG or DICOM)")] = None,
        cdfi: Annotated[UploadFile | None, File(description="Colour Doppler image")] = None,
        elastography: Annotated[UploadFile | None, File(description="Elastography image")] = None,
        image: Annotated[UploadFile | None, File(description="One image for a single-image model")] = None,
        model: Annotated[str | None, Form(description="Model id (GET /api/models); default: the server's")] = None,
        explain: Annotated[bool, Form(description="Add a Grad-CAM heat map per image")] = False,
        roi: Annotated[RoiOption, Form(description="none, auto (segmenter) or box")] = "none",
        box: Annotated[str | None, Form(description="roi=box: 'x0,y0,x1,y1' in pixels")] = None,
        images: Annotated[bool, Form(description="Return each decoded image as PNG (for display)")] = False,
    ) -> Response:
        """Predict one lymph node from one image per modality (any modality may be missing)."""
        t0 = time.perf_counter()
        rid = request.state.request_id
        files = {"bmode": bmode, "cdfi": cdfi, "elastography": elastography, "image": image}
        uploads = {k: await f.read() for k, f in files.items() if f is not None}
        opts = PredictOptions(explain=explain, roi=roi, box=parse_box(box), images=images)

        def work() -> bytes:
            queued = (time.perf_counter() - t0) * 1000
            resp, decoded = run_prediction(service, uploads, opts, model_id=model, max_pixels=settings.max_pixels,
                                           request_id=rid, queued_ms=queued)
            if keep is not None:
                for f, up in decoded.items():
                    keep_upload(keep, f"{rid}_{f}", up)
            return resp.model_dump_json().encode()  # pydantic's own serialiser, in the worker, not the event loop

        # the schema is documented by response_model; the JSON is already made from the validated PredictResponse
        return Response(await in_pool(work), media_type="application/json")

    @app.post("/api/batch", response_class=Response, responses={200: {"content": {"text/csv": {}}}, **_ERRORS},
              tags=["predict"], max_body_size=limit)
    async def batch(
        request: Request,
        files: Annotated[list[UploadFile] | None, File(description="Images of a folder")] = None,
        archive: Annotated[UploadFile | None, File(description="A zip of images")] = None,
        model: Annotated[str | None, Form(description="A single-image model id")] = None,
    ) -> Response:
        """Score many single images (a folder's files or a zip) -> predictions CSV (one row per file)."""
        m = _batch_model(service, model)
        items: list[tuple[str, bytes | None, str]] = []
        for f in files or []:
            items.append((f.filename or f"file{len(items) + 1}", await f.read(), ""))
        if archive is not None:
            items += list(iter_zip(await archive.read(), max_files=settings.max_batch_files,
                                   max_member_bytes=settings.max_upload_bytes))
        if not items:
            raise UploadRejected(422, "no files: send 'files' (a folder's images) or 'archive' (a zip)")
        if len(items) > settings.max_batch_files:
            raise UploadRejected(413, f"{len(items)} files exceed this server's batch limit of "
                                      f"{settings.max_batch_files}")
        csv = await in_pool(partial(run_batch, m, items, max_pixels=settings.max_pixels))
        return Response(csv, media_type="text/csv",
                        headers={"content-disposition": 'attachment; filename="predictions.csv"'})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")


def _batch_model(service: ModelService, model_id: str | None) -> ServedModel:
    try:
        m = service.get(model_id) if model_id else next(
            (x for x in service.models.values() if x.kind == "classifier"), service.get(None))
    except ValueError as exc:
        raise UploadRejected(404, str(exc)) from None
    if m.kind != "classifier":
        raise UploadRejected(422, f"batch mode scores single images; model {m.id!r} is a {m.kind} model: choose a "
                                  "classifier")
    return m


def _version() -> str:
    from nodescope import __version__

    return str(__version__)
