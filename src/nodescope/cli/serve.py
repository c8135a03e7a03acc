"""``nodescope serve``: the web service (REST API + page) on one or more model bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nodescope.cli._common import choice, console, in_range

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to the main app."""

    @app.command()
    def serve(
        bundle: Annotated[list[Path] | None, typer.Option(
            "--bundle", help="classifier or fusion bundle folder (repeat for several; env NODESCOPE_SERVE_BUNDLES)")
        ] = None,
        segmenter: Annotated[list[Path] | None, typer.Option(
            help="segmenter bundle folder for roi=auto (repeat to average several)")] = None,
        host: Annotated[str | None, typer.Option(help="address to listen on (default 127.0.0.1)")] = None,
        port: Annotated[int | None, typer.Option(callback=in_range(ge=0, le=65535), help="default 8000")] = None,
        engine: Annotated[str | None, typer.Option(callback=choice("torch", "onnx"), help="torch | onnx")] = None,
        threads: Annotated[int | None, typer.Option(
            callback=in_range(ge=1), help="intra-op threads per worker (default: owned cores / workers)")] = None,
        workers: Annotated[int | None, typer.Option(callback=in_range(ge=1), help="inference workers (default 1)")
                           ] = None,
        queue: Annotated[int | None, typer.Option(
            callback=in_range(ge=0), help="requests that may wait for a worker before 503 (default 8)")] = None,
        max_upload_mb: Annotated[float | None, typer.Option(
            callback=in_range(gt=0), help="largest request body, MiB (default 32)")] = None,
        max_pixels: Annotated[int | None, typer.Option(callback=in_range(ge=1),
                                                       help="largest image, pixels (default 40000000)")] = None,
        api_key: Annotated[str | None, typer.Option(
            help="require this key (header X-API-Key); better: env NODESCOPE_SERVE_API_KEY")] = None,
        cors_origin: Annotated[list[str] | None, typer.Option(help="allow this origin (CORS is off by default)")
                               ] = None,
        keep_uploads: Annotated[Path | None, typer.Option(
            help="keep de-identified copies of uploads in this folder (default: nothing is kept)")] = None,
        onnx_cache: Annotated[Path | None, typer.Option(
            help="--engine onnx: folder of the ONNX exports (default: the user cache; bundles are never written)")
                              ] = None,
    ) -> None:
        """Serve bundles over HTTP: a REST API (OpenAPI at /api/openapi.json) and a page at /."""
        from nodescope.serve import load_settings
        from nodescope.serve import serve as run

        settings = load_settings(bundles=bundle, segmenter=segmenter, host=host, port=port, engine=engine,
                                 threads=threads, workers=workers, queue=queue, max_upload_mb=max_upload_mb,
                                 max_pixels=max_pixels, api_key=api_key, cors_origins=cors_origin,
                                 keep_uploads=keep_uploads, onnx_cache=onnx_cache)
        if settings.host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
            console.print(f"[yellow]warning:[/] listening on {settings.host} without an API key")
        run(settings)
