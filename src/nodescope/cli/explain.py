"""``nodescope explain``: class activation maps of a bundle over images, overlays, a gallery and lesion scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nodescope.cli._common import console, in_range

__all__ = ["register"]


def _methods(ctx: Any, param: Any, value: str) -> str:
    """``--method a,b``: every name must be a CAM method (checked while parsing)."""
    from nodescope.errors import ConfigError
    from nodescope.explain import METHODS

    names = [v.strip() for v in str(value).split(",") if v.strip()]
    bad = [n for n in names if n not in METHODS]
    if bad or not names:
        raise ConfigError(f"--method: unknown CAM method(s) {bad or [value]}; valid: {', '.join(METHODS)} "
                          "(several separated by commas)")
    if len(set(names)) != len(names):
        raise ConfigError(f"--method: {value!r} names a method twice")
    return ",".join(names)


def register(app: typer.Typer) -> None:
    """Attach the ``explain`` command to the main app."""

    @app.command()
    def explain(
        bundle: Annotated[Path, typer.Argument(help="model bundle directory (classifier or fusion)")],
        inputs: Annotated[list[Path], typer.Argument(help="manifest.csv (a 'mask' column adds the lesion scores), "
                                                          "folder(s) or image file(s)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="output folder (created; a non-empty one only "
                                                              "with --overwrite)")],
        method: Annotated[str, typer.Option(callback=_methods, help="gradcam | gradcampp | scorecam | eigencam | "
                                                                     "layercam; several separated by commas")
                          ] = "gradcam",
        target: Annotated[str | None, typer.Option(help="class to explain (default: each image's predicted "
                                                        "class)")] = None,
        alpha: Annotated[float, typer.Option(callback=in_range(ge=0, le=1), help="overlay colour weight")] = 0.45,
        tolerance: Annotated[float, typer.Option(callback=in_range(ge=0),
                                                 help="pointing-game tolerance in pixels")] = 0.0,
        n_boot: Annotated[int, typer.Option("--n-boot", callback=in_range(ge=1),
                                            help="bootstrap replicates (patients resampled)")] = 2000,
        seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
        group_col: Annotated[str | None, typer.Option(
            help="manifest grouping column (default: the bundle's training group_col, else patient_id)")] = None,
        threads: Annotated[int | None, typer.Option(callback=in_range(ge=1),
                                                    help="CPU threads (default: torch's setting)")] = None,
        max_pixels: Annotated[int | None, typer.Option(
            callback=in_range(ge=1), help="refuse images with more pixels (default 100000000, or "
                                          "$NODESCOPE_MAX_PIXELS)")] = None,
        gallery_max: Annotated[int, typer.Option(callback=in_range(ge=1),
                                                 help="images shown in gallery.html (all get their files)")] = 200,
        overwrite: Annotated[bool, typer.Option(help="write into a non-empty output folder, replacing files of "
                                                     "the same name")] = False,
    ) -> None:
        """Grad-CAM and friends: heat maps on the original images, overlays, gallery.html, and where masks exist
        the share of CAM energy in the lesion and the pointing game (patient-bootstrap 95% CIs)."""
        import torch

        from nodescope._files import atomic_folder, check_outputs, rebase
        from nodescope.data._io_base import max_pixels_limit
        from nodescope.explain import explain_files
        from nodescope.models import load_bundle

        b = load_bundle(bundle)
        check_outputs([out], [bundle, *inputs], overwrite, kind="folder")
        if target is not None and target not in b.classes:
            from nodescope.errors import ConfigError

            raise ConfigError(f"--target: {target!r} is not a class of the bundle; its classes: {list(b.classes)}")
        if threads is not None:
            torch.set_num_threads(threads)
        with max_pixels_limit(max_pixels), atomic_folder(out) as tmp:
            run = explain_files(b, inputs, tmp, methods=method.split(","), target=target, alpha=alpha,
                                tolerance=tolerance, n_boot=n_boot, seed=seed, group_col=group_col,
                                gallery_max=gallery_max)
            files = rebase(run.files, tmp, out)
        n_img = run.scores["image"].nunique()
        console.print(f"{n_img} image(s) explained with {b.name} ({method}) -> {out}")
        if run.summary is not None:
            frame = run.summary.to_frame()
            for r in frame[frame["class"] == "all"].itertuples(index=False):
                if r.metric != "mask_fraction":
                    console.print(f"{r.method}: {r.metric} {r.estimate:.3f} ({r.ci_low:.3f}-{r.ci_high:.3f}) "
                                  f"n={r.n}")
        console.print(f"gallery: {files['gallery']}")
