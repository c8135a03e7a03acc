"""Running the service: settings -> models loaded and warmed -> uvicorn (graceful shutdown drains requests)."""

from __future__ import annotations

import logging

from nodescope.serve._settings import ServeSettings

__all__ = ["build", "log_config", "serve"]

log = logging.getLogger(__name__)


def build(settings: ServeSettings) -> object:
    """Load the models of ``settings`` (raising the first bundle's error) and return the FastAPI app."""
    from nodescope.serve._app import create_app
    from nodescope.serve._service import load_service

    service = load_service(settings.bundles, engine=settings.engine, threads=settings.intra_threads,
                           segmenter=settings.segmenter)
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
    log.info("serving %d bundle(s) on http://%s:%d", len(settings.bundles), settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="info",  # type: ignore[arg-type]
                timeout_graceful_shutdown=int(settings.shutdown_timeout), server_header=False,
                log_config=log_config())


def log_config() -> dict:
    """uvicorn's logging configuration plus the ``nodescope`` loggers (the access lines with request ids) at INFO."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["nodescope"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return cfg
