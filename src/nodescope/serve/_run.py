"""Running the service: settings -> models loaded and warmed -> uvicorn (graceful shutdown drains requests)."""

from __future__ import annotations

import sys

from nodescope.serve._settings import ServeSettings

__all__ = ["build", "log_config", "serve"]

_SWITCH_INTERVAL_S = 0.001


def build(settings: ServeSettings) -> object:
    """Load the models of ``settings`` (raising the first bundle's error) and return the FastAPI app."""
    from nodescope.serve._app import create_app
    from nodescope.serve._service import load_service

    service = load_service(settings.bundles, engine=settings.engine, threads=settings.intra_threads,
                           segmenter=settings.segmenter, onnx_cache=settings.onnx_cache)
    return create_app(settings, service)


def serve(settings: ServeSettings) -> None:
    """Load and warm the models, then serve until SIGINT/SIGTERM; requests in flight finish first (up to
    ``settings.shutdown_timeout`` seconds).

    Raises
    ------
    BundleError, MissingFileError, ConfigError
        Before the port is opened, when a bundle or the segmenter cannot be loaded.
    """
    import uvicorn

    app = build(settings)
    # The event loop (headers, admission, 503s) shares the GIL with the inference worker; while the worker runs
    # Python code the loop waits up to the switch interval for it (5 ms by default, per wake-up). 1 ms bounds that
    # wait. Measured with a worker holding the GIL 50 ms at a time on a shared 2-core machine: event-loop lags over
    # 5 ms 132 and 134 of ~6,600 with the default, 30 and 109 with 1 ms (noisy; docs/serve.md).
    if sys.getswitchinterval() > _SWITCH_INTERVAL_S:
        sys.setswitchinterval(_SWITCH_INTERVAL_S)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="info",  # type: ignore[arg-type]
                timeout_graceful_shutdown=int(settings.shutdown_timeout), server_header=False,
                log_config=log_config())


def log_config() -> dict:
    """uvicorn's logging configuration plus the ``nodescope`` loggers at INFO: the access lines (with request ids)
    and, prefixed with ``[<request id>]``, whatever is logged while a request is handled."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg.setdefault("filters", {})["request_id"] = {"()": "nodescope.serve._guard.RequestIdFilter"}
    cfg["handlers"]["nodescope"] = {**cfg["handlers"]["default"], "filters": ["request_id"]}
    cfg["loggers"]["nodescope"] = {"handlers": ["nodescope"], "level": "INFO", "propagate": False}
    return cfg
