"""Settings of ``nodescope serve``, validated once at start-up (pydantic-settings; environment variables too).

Every setting can be given as an argument (the command line) or as an environment variable ``NODESCOPE_SERVE_<NAME>``
(``NODESCOPE_SERVE_API_KEY``, ``NODESCOPE_SERVE_BUNDLES='["runs/a/final/bundle"]'``, ...); arguments win. A value
outside its range is a :class:`~nodescope.errors.ConfigError` naming the setting, before anything is loaded.

Threads: inference runs in a bounded pool of ``workers`` threads, each using ``threads`` intra-op threads. Their
product may not exceed the cores this process owns (:func:`nodescope.models.owned_cores`): an over-subscribed
2-thread torch job runs 14-25x slower, so the service refuses such a setting instead of degrading silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nodescope.errors import ConfigError

__all__ = ["ENV_PREFIX", "ServeSettings", "load_settings"]

#: Prefix of the environment variables read by :class:`ServeSettings`.
ENV_PREFIX = "NODESCOPE_SERVE_"


class ServeSettings(BaseSettings):
    """What the service serves and how (see the module docstring for the environment variables).

    Attributes
    ----------
    bundles : list of Path
        Classifier (``classifier``) or intermediate-fusion (``fusion``) bundle folders; at least one.
    segmenter : list of Path
        Segmenter bundle folders for automatic ROI (``roi=auto``); their masks are averaged.
    host, port : str, int
        Where to listen (default 127.0.0.1:8000; loopback only unless told otherwise).
    engine : {"torch", "onnx"}
    workers : int
        Inference threads in the pool (default 1).
    threads : int or None
        Intra-op threads per worker; default: the owned cores divided by ``workers``.
    queue : int
        Requests allowed to wait for a worker; beyond ``workers + queue`` in flight a request is answered 503 with
        ``Retry-After`` at once.
    max_upload_mb : float
        Largest request body (all files together), MiB; larger ones are answered 413.
    max_pixels : int
        Largest image (width x height x frames, read from the header before decoding); larger ones 413.
    max_batch_files : int
        Most images in one batch request (a folder or a zip).
    api_key : SecretStr or None
        When set, every ``/api/`` route but ``/api/health`` needs header ``X-API-Key`` (or ``Authorization: Bearer``).
    cors_origins : list of str
        Origins allowed by CORS; empty (default): CORS off.
    keep_uploads : Path or None
        Keep de-identified copies of the uploads there (DICOM: PS3.15 basic profile; images re-encoded as PNG
        without metadata); default: uploads live in memory only.
    shutdown_timeout : float
        Seconds graceful shutdown waits for requests in flight.
    onnx_cache : Path or None
        With ``engine="onnx"``: where the ONNX exports of the classifier, fusion and segmenter bundles are kept,
        named by each bundle's weights digest (default :func:`nodescope.models.onnx_cache_dir`:
        ``$NODESCOPE_ONNX_CACHE``, else ``$NODESCOPE_CACHE_DIR/onnx``, else the user cache folder). Bundle folders
        are inputs and never written.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    bundles: list[Path] = Field(min_length=1)
    segmenter: list[Path] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    engine: Literal["torch", "onnx"] = "torch"
    workers: int = Field(1, ge=1, le=256)
    threads: int | None = Field(None, ge=1, le=1024)
    queue: int = Field(8, ge=0, le=10_000)
    max_upload_mb: float = Field(32.0, gt=0, le=4096)
    max_pixels: int = Field(40_000_000, ge=1)
    max_batch_files: int = Field(500, ge=1, le=100_000)
    api_key: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    keep_uploads: Path | None = None
    shutdown_timeout: float = Field(30.0, ge=0, le=3600)
    onnx_cache: Path | None = None

    @model_validator(mode="after")
    def _checks(self) -> ServeSettings:
        from nodescope.models import owned_cores

        cores = owned_cores()
        if self.threads is not None and self.threads * self.workers > cores:
            raise ValueError(f"workers x threads = {self.workers} x {self.threads} = {self.workers * self.threads} "
                             f"exceeds the {cores} core(s) this process owns; over-subscribed inference is many "
                             "times slower: lower threads or workers")
        if self.api_key is not None and len(self.api_key.get_secret_value()) < 8:
            raise ValueError("api_key: use at least 8 characters")
        return self

    @property
    def max_upload_bytes(self) -> int:
        """:attr:`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def intra_threads(self) -> int:
        """Intra-op threads per worker: :attr:`threads`, or the owned cores shared among the workers."""
        from nodescope.models import owned_cores

        return self.threads if self.threads is not None else max(1, owned_cores() // self.workers)


def load_settings(**values: object) -> ServeSettings:
    """Validated settings from ``values`` (``None`` values are left to the environment and the defaults).

    Raises
    ------
    ConfigError
        Naming the setting (and its environment variable) and what is allowed.
    """
    given = {k: v for k, v in values.items() if v is not None and v != [] and v != ()}
    try:
        return ServeSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        where = f"{loc} ({ENV_PREFIX}{loc.split('.')[0].upper()})" if loc != "settings" else "settings"
        msg = str(err.get("msg", exc)).removeprefix("Value error, ")
        raise ConfigError(f"serve setting {where}: {msg}") from None
