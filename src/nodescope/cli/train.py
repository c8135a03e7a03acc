"""``nodescope train``, ``nodescope predict`` and ``nodescope pretrain``.

The options of ``train`` are generated from the fields of :class:`nodescope.training.TrainConfig`: name (``-`` for
``_``), help (the field's ``description``), shown default, choices (``Literal`` fields) and ``--x/--no-x`` for
booleans come from the model, so a new field is a new option. Lists of names are comma-separated (``--classes
a,b``), lists of paths repeatable (``--external a.csv --external b.csv``). Every option defaults to "not given":
the YAML ``--config`` supplies the value then, else the model's default. Each value given is validated on its own
as soon as the command line is parsed (``--lr: must be a finite number > 0, got inf``).
"""

from __future__ import annotations

import inspect
import logging
import signal
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic_core import PydanticUndefined

from nodescope.cli import _common
from nodescope.cli._common import choice, console, fail, in_range, print_paths, progress
from nodescope.errors import ConfigError

__all__ = ["register", "train_options"]

log = logging.getLogger(__name__)

#: CLI-only parameters of ``train`` and options whose names differ from ``--<field>``.
_ARGUMENT = "manifest"
_SHORT = {"out": ("--out", "-o")}


def _csv(v: str | None) -> list[str] | None:
    return None if v is None else [s.strip() for s in v.split(",") if s.strip()]


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _shown(value: Any) -> str | bool:
    if value is None or value is PydanticUndefined:
        return False
    if isinstance(value, list):
        return ",".join(map(str, value)) if value else False
    return str(value).lower() if isinstance(value, bool) else str(value)


def train_options() -> list[inspect.Parameter]:
    """The parameters of ``nodescope train`` derived from :class:`~nodescope.training.TrainConfig`.

    Returns
    -------
    list of inspect.Parameter
        One keyword parameter per field (``manifest`` an argument), annotated for typer, defaulting to ``None``
        (not given), then ``--config``.
    """
    from nodescope.training._config import RECIPES, TrainConfig, allowed_values

    params = []
    for name, field in TrainConfig.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("cli") is False:
            continue
        base = _strip_optional(field.annotation)
        default = field.get_default(call_default_factory=True)
        flag = "--" + name.replace("_", "-")
        decls: tuple[str, ...] = _SHORT.get(name, (flag,))
        help_ = field.description or ""
        shown = _shown(default)
        if name in RECIPES["transfer"]:  # the effective default comes from the default recipe
            help_ = (f"{help_} (default: {_shown(RECIPES['transfer'][name])}, from the transfer recipe; {shown} "
                     "with --recipe none)")
            shown = False
        metavar = None
        if get_origin(base) is list:
            if get_args(base)[0] is Path:
                typ: Any = list[Path] | None  # repeatable
            else:
                typ, metavar = str | None, "A,B,..."  # comma-separated
        elif get_origin(base) is Literal:
            choices = get_args(base)
            typ, metavar = type(choices[0]) | None, "[" + "|".join(map(str, choices)) + "]"
        elif base is bool:
            typ, decls = bool | None, (f"{flag}/--no-{flag[2:]}",)
        else:
            typ = base | None
            allowed = allowed_values(name)
            if allowed:
                help_ = f"{help_} ({allowed})"
        if name == _ARGUMENT:
            info: Any = typer.Argument(help=f"{help_} (or give it in --config)", show_default=False,
                                       metavar="MANIFEST")
        else:
            info = typer.Option(*decls, help=help_, show_default=shown, metavar=metavar)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[typ, info]))
    params.insert(2, inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[Path | None, typer.Option(help="YAML config; flags override it")]))
    return params


def _with_signature(func: Callable[..., None], params: list[inspect.Parameter]) -> Callable[..., None]:
    func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return func


def _overrides(given: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line, validated one by one; errors name the option typed."""
    from nodescope.training._config import TrainConfig, check_value

    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or (isinstance(value, list) and not value):
            continue
        if isinstance(value, str) and get_origin(_strip_optional(TrainConfig.model_fields[name].annotation)) is list:
            value = _csv(value)
        try:
            out[name] = check_value(name, value)
        except ConfigError as exc:
            where = "MANIFEST" if name == _ARGUMENT else _SHORT.get(name, ("--" + name.replace("_", "-"),))[0]
            raise ConfigError(where + str(exc)[len(name):]) from None
    return out


def _train(**given: Any) -> None:
    """Train a classifier with patient-level k-fold cross-validation; writes bundles and predictions.csv."""
    from nodescope.training import load_config, run_cv
    from nodescope.training._config import check_accelerator
    from nodescope.training._folds import TrainingTerminated

    config = given.pop("config")
    cfg = load_config(config, **_overrides(given))
    try:
        check_accelerator(cfg.accelerator)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from None
    if cfg.weights not in ("none", "imagenet") and Path(cfg.weights).is_file():
        from nodescope.models._weights import read_state_dict

        read_state_dict(cfg.weights)  # refused before the run writes anything (a pickle, a broken file)
    try:
        with progress() as shown:
            res = run_cv(cfg, progress=shown)
    except TrainingTerminated as exc:  # not a user error: exit 128 + signal, as a shell reports a killed job
        fail(f"training was terminated ({signal.Signals(exc.signum).name}) during {exc.stage}; the finished folds "
             f"are kept in {exc.run_dir}: continue with --resume", code=128 + exc.signum)
    if res.run_summary is None:
        return  # a non-zero DDP rank
    from nodescope.cli._summaries import train_summary

    if not _common.output.quiet:  # the CIs are computed from the saved predictions: skipped when nothing is shown
        for item in train_summary(res.run_dir, res.run_summary):
            console.print(item, highlight=False)
    final = res.run_dir / "final" / "bundle"
    print_paths(res.run_dir / "predictions.csv", final if final.is_dir() else None)


def register(app: typer.Typer) -> None:
    """Attach ``train``, ``predict`` and ``pretrain`` to the main app."""
    app.command(name="train")(_with_signature(_train, train_options()))

    @app.command()
    def predict(
        bundle: Annotated[Path, typer.Argument(help="model bundle directory")],
        inputs: Annotated[list[Path], typer.Argument(help="manifest.csv, folder(s) or image file(s)")],
        output: Annotated[Path, typer.Option("--output", "-o", help="predictions CSV to write (never an input; an "
                                                                    "existing file only with --overwrite)")] = Path(
            "predictions.csv"),
        overwrite: Annotated[bool, typer.Option(help="replace an existing output file")] = False,
        tta: Annotated[bool | None, typer.Option(
            "--tta/--no-tta", help="average with the mirrored image (default: as the bundle was evaluated)")] = None,
        engine: Annotated[str, typer.Option(
            help="torch | onnx (onnx: the classifier and any --segmenter run on ONNX Runtime)",
            callback=choice("torch", "onnx"))] = "torch",
        onnx_cache: Annotated[Path | None, typer.Option(
            help="--engine onnx: folder of the ONNX exports (default: $NODESCOPE_CACHE_DIR/onnx or the user cache; "
                 "bundles are never written)")] = None,
        threads: Annotated[int | None, typer.Option(callback=in_range(ge=1),
                                                    help="CPU threads (default: the cores this process owns)")
                           ] = None,
        split: Annotated[str, typer.Option(help="split column value (test | external | ...)")] = "test",
        batch_size: Annotated[int, typer.Option(callback=in_range(ge=1), help="images per batch (>= 1)")] = 32,
        group_col: Annotated[str | None, typer.Option(
            help="manifest grouping column (default: the bundle's training group_col, else patient_id)")] = None,
        max_pixels: Annotated[int | None, typer.Option(
            callback=in_range(ge=1), help="refuse images with more pixels (default 100000000, or "
                                          "$NODESCOPE_MAX_PIXELS)")] = None,
        segmenter: Annotated[list[Path] | None, typer.Option(
            help="segmenter bundle(s) (repeatable): crop each image to its automatic mask, for a classifier "
                 "trained with --roi mask or --roi two-view")] = None,
        fusion: Annotated[str, typer.Option(callback=choice("mean", "vote", "staple"),
                                            help="fusion of several --segmenter bundles")] = "mean",
        largest_component: Annotated[bool, typer.Option(
            help="with --segmenter: keep the largest connected component of each automatic mask")] = False,
        fill_holes: Annotated[bool, typer.Option(help="with --segmenter: fill holes of each automatic mask")] = False,
        adapt_bn: Annotated[bool, typer.Option(
            help="re-estimate BatchNorm statistics on these images first (AdaBN; no labels; torch engine)")] = False,
    ) -> None:
        """Predict images with a bundle; writes a predictions CSV (contract columns + y_pred at the bundle threshold).

        With --segmenter: image -> automatic mask -> crop -> class, no drawn mask needed."""
        from nodescope._files import atomic_write_csv, check_outputs
        from nodescope.data._io_base import max_pixels_limit
        from nodescope.models import load_bundle, predict_files

        b = load_bundle(bundle)
        check_outputs([output], [bundle, *inputs, *(segmenter or [])], overwrite)  # before the (slow) prediction
        source = None
        if (largest_component or fill_holes) and not segmenter:
            raise ConfigError("--largest-component and --fill-holes clean automatic masks: give --segmenter too")
        if segmenter:
            from nodescope.segment import Segmenter, automatic_roi

            source = automatic_roi(Segmenter(segmenter, fusion=fusion,  # type: ignore[arg-type]
                                             largest_component=largest_component, fill_holes=fill_holes,
                                             engine=engine, threads=threads, onnx_cache_dir=onnx_cache))
        with max_pixels_limit(max_pixels):
            df = predict_files(b, inputs, tta=tta, engine=engine, split=split,  # type: ignore[arg-type]
                               batch_size=batch_size, group_col=group_col, threads=threads, mask_source=source,
                               adapt_bn=adapt_bn, onnx_cache_dir=onnx_cache)
        atomic_write_csv(df, output, index=False)
        console.print(f"{len(df)} image(s) predicted with {b.name} ({engine}) -> {output}")
        print_paths(output)

    @app.command()
    def pretrain(
        manifests: Annotated[list[Path], typer.Argument(help="one manifest per task (its own classes)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="backbone bundle directory")],
        backbone: Annotated[str, typer.Option()] = "tf_efficientnet_lite0",
        weights: Annotated[str, typer.Option(help="starting weights: none | imagenet | PATH")] = "imagenet",
        group_col: Annotated[list[str] | None, typer.Option(help="grouping column per task (patient_id)")] = None,
        exclude: Annotated[list[Path] | None, typer.Option(
            help="manifest(s) of the experiment whose images must not be pretrained on")] = None,
        image_size: Annotated[int, typer.Option(callback=in_range(ge=1))] = 224,
        channels: Annotated[int, typer.Option(callback=choice(1, 3), help="1 or 3")] = 3,
        epochs: Annotated[int, typer.Option(callback=in_range(ge=1))] = 50,
        batch_size: Annotated[int, typer.Option(callback=in_range(ge=2))] = 16,
        lr: Annotated[float, typer.Option(callback=in_range(gt=0))] = 5e-5,
        patience: Annotated[int, typer.Option(callback=in_range(ge=1))] = 5,
        val_fraction: Annotated[float, typer.Option(callback=in_range(gt=0, lt=1),
                                                    help="validation fraction (4:1 split = 0.2)")] = 0.2,
        seed: Annotated[int, typer.Option(callback=in_range(ge=0))] = 0,
        augment: Annotated[str, typer.Option(callback=choice("none", "light", "standard"))] = "standard",
        num_threads: Annotated[int | None, typer.Option(callback=in_range(ge=1))] = None,
        overwrite: Annotated[bool, typer.Option(help="write into an existing, non-empty bundle directory")] = False,
    ) -> None:
        """Multitask pretraining on public ultrasound data sets: shared backbone, one head per task."""
        from nodescope._files import check_outputs
        from nodescope.training import PretrainTask, run_pretrain

        groups = list(group_col or [])
        if groups and len(groups) not in (1, len(manifests)):
            fail(f"--group-col: give one value or one per manifest ({len(manifests)}), got {len(groups)}")
        tasks = [PretrainTask(m, group_col=(groups[i] if len(groups) > 1 else groups[0]) if groups else "patient_id")
                 for i, m in enumerate(manifests)]
        given_weights = [Path(weights)] if Path(weights).exists() else []
        check_outputs([out], [*manifests, *(exclude or []), *given_weights], overwrite, kind="folder")
        with progress() as shown:
            res = run_pretrain(tasks, out, backbone=backbone, weights=weights, image_size=image_size,
                               channels=channels, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                               val_fraction=val_fraction, seed=seed, augment=augment,  # type: ignore[arg-type]
                               exclude=exclude or [], num_threads=num_threads, progress=shown)
        console.print(f"backbone bundle -> {res.bundle} (best mean val loss {res.best_val_loss:.4f} at epoch "
                      f"{res.best_epoch}); use it with: nodescope train ... --weights {res.bundle}")
        print_paths(res.bundle)
