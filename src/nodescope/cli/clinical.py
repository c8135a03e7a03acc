"""The clinical stage's commands: ``nodescope table1`` (cohort per group) and ``nodescope nomogram`` (DL signature
+ clinical factors)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from nodescope.cli._common import console, in_range
from nodescope.errors import ConfigError

if TYPE_CHECKING:
    from nodescope.clinical import Table1

__all__ = ["register"]

_FORMATS = {".csv": "csv", ".html": "html", ".htm": "html", ".tex": "latex", ".md": "markdown"}


def _parse_summary(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        col, sep, how = item.rpartition("=")
        if not sep or not col.strip() or how.strip() not in ("mean", "median"):
            raise ConfigError(f"--summary {item!r}: expected COLUMN=mean or COLUMN=median")
        out[col.strip()] = how.strip()
    return out


def _render(result: Table1, fmt: str) -> str:
    if fmt == "csv":
        return result.to_frame().to_csv(index=False)
    if fmt == "html":
        return result.to_html()
    if fmt == "latex":
        return result.to_latex()
    return result.to_markdown()


def register(app: typer.Typer) -> None:
    """Attach the clinical stage's commands (``table1``, ``nomogram``, ``features``, ``signature``) to the app."""
    register_nomogram(app)
    register_radiomics(app)

    @app.command(name="table1")
    def table1_cmd(
        clinical: Annotated[Path, typer.Argument(help="Clinical CSV, one row per patient.", show_default=False)],
        group: Annotated[str, typer.Option("--group", "-g", help="Grouping column (the table's columns).")],
        out: Annotated[Path | None, typer.Option("-o", "--out", help="Output file; its suffix picks the format "
                                                 "(.csv, .html, .tex, .md). Default: print Markdown.")] = None,
        fmt: Annotated[str | None, typer.Option("--format", help="csv, html, latex or markdown (overrides the "
                                                "suffix).")] = None,
        variable: Annotated[list[str] | None, typer.Option("--variable", "-v", help="A row variable (repeatable; "
                                                           "default every column).")] = None,
        summary: Annotated[list[str] | None, typer.Option(help="COLUMN=mean or COLUMN=median, overriding the "
                                                          "normality check (repeatable).")] = None,
        categorical: Annotated[list[str] | None, typer.Option(help="Treat a numeric column as categorical "
                                                              "(repeatable).")] = None,
        continuous: Annotated[list[str] | None, typer.Option(help="Treat a column as continuous "
                                                             "(repeatable).")] = None,
        exclude: Annotated[list[str] | None, typer.Option(help="Leave a column out (repeatable).")] = None,
        digits: Annotated[int, typer.Option(help="Decimals of continuous summaries.")] = 1,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    ) -> None:
        """Table 1: per-group n, mean ± SD or median [IQR], n (%), missing counts, tests, SMDs and p-values."""
        from nodescope._files import atomic_write_text, check_outputs
        from nodescope.clinical import read_clinical_table, table1

        if fmt is None and out is not None:
            fmt = _FORMATS.get(out.suffix.lower())
            if fmt is None:
                raise ConfigError(f"--out {out}: unknown suffix {out.suffix!r}; use .csv, .html, .tex or .md, or "
                                  "give --format")
        fmt = fmt or "markdown"
        if fmt not in ("csv", "html", "latex", "markdown"):
            raise ConfigError(f"--format: must be one of csv, html, latex, markdown, got {fmt!r}")
        if out is not None:
            check_outputs([out], [clinical], overwrite)
        frame = read_clinical_table(clinical)
        variables = list(variable) if variable else None
        if variables is None and exclude:
            variables = [c for c in frame.columns if c not in (group, "patient_id", *exclude)]
        result = table1(frame, group, variables=variables, summary=_parse_summary(summary or []),  # type: ignore[arg-type]
                        continuous=continuous or (), categorical=categorical or (), digits=digits)
        text = _render(result, fmt)
        if out is None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        atomic_write_text(out, text)
        console.print(f"Table 1 by {group!r} ({len(result.rows)} variables, groups "
                      f"{', '.join(f'{g} n={n}' for g, n in result.n.items())}) written to {out}")


def register_nomogram(app: typer.Typer) -> None:
    """Attach the ``nomogram`` command to the main app."""

    @app.command(name="nomogram")
    def nomogram_cmd(
        predictions: Annotated[Path, typer.Argument(help="predictions.csv with the DL signature.",
                                                    show_default=False)],
        clinical: Annotated[Path, typer.Argument(help="Clinical CSV, one row per patient, joined on patient_id.",
                                                 show_default=False)],
        terms: Annotated[str, typer.Option("--terms", "-t", help="Clinical part of the formula, e.g. "
                                           "'rcs(age, 3) + shape'.")],
        out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("nomogram-out"),
        model: Annotated[str | None, typer.Option(help="The model in predictions.csv (when it holds several).")] = None,
        positive: Annotated[str | None, typer.Option(help="Positive class of the predictions.")] = None,
        scale: Annotated[str, typer.Option(help="Signature as 'logit' (log odds) or 'probability'.")] = "logit",
        signature_term: Annotated[str, typer.Option(help="How the signature enters, e.g. 'rcs(dl_signature, 3)'.")
                                  ] = "dl_signature",
        outcome: Annotated[str | None, typer.Option(help="Clinical column to use as outcome instead of y_true.")
                           ] = None,
        n_boot: Annotated[int, typer.Option("--n-boot", callback=in_range(ge=1),
                                            help="Bootstrap repetitions (validate, calibrate).")] = 200,
        seed: Annotated[int, typer.Option(help="Seed of the bootstraps.")] = 0,
        firth: Annotated[str, typer.Option(help="Firth's penalised likelihood: 'no', 'yes' or 'auto' (when "
                                           "separation is detected).")] = "no",
        missing: Annotated[str, typer.Option(help="Missing clinical values: 'complete' (complete cases) or 'impute' "
                                             "(multiple imputation, Rubin's rules).")] = "complete",
        imputations: Annotated[int, typer.Option(callback=in_range(ge=2), help="Imputed data sets for --missing "
                                                 "impute.")] = 20,
        fit_split: Annotated[list[str] | None, typer.Option(help="Split(s) to fit the models on (repeatable; default "
                                                            "cv and val). 'test' when the signature's model was "
                                                            "trained on other data.")] = None,
        cutoff: Annotated[list[float] | None, typer.Option(help="Risk-category bound for a categorical NRI "
                                                           "(repeatable; default category-free).")] = None,
        overwrite: Annotated[bool, typer.Option(help="Write into a non-empty output folder.")] = False,
    ) -> None:
        """Clinical-only vs DL-only vs combined logistic models: comparisons, validation, nomogram, report.html."""
        from nodescope._files import atomic_folder, check_outputs, rebase
        from nodescope.clinical._combine import combine_signature, join_signature
        from nodescope.clinical._combine_report import write_combined

        if scale not in ("logit", "probability"):
            raise ConfigError(f"--scale: must be logit or probability, got {scale!r}")
        if missing not in ("complete", "impute"):
            raise ConfigError(f"--missing: must be complete or impute, got {missing!r}")
        if firth not in ("no", "yes", "auto"):
            raise ConfigError(f"--firth: must be no, yes or auto, got {firth!r}")
        check_outputs([out], [predictions, clinical], overwrite, kind="folder")
        data, notes = join_signature(predictions, clinical, model=model, positive=positive,
                                     scale=scale, outcome=outcome)  # type: ignore[arg-type]
        result = combine_signature(data, terms, dl_term=signature_term, B=n_boot, seed=seed,
                                   firth={"no": False, "yes": True, "auto": None}[firth], cutoffs=cutoff,
                                   missing=missing,  # type: ignore[arg-type]
                                   m=imputations, development=tuple(fit_split or ("cv", "val")), notes=notes)
        with atomic_folder(out) as tmp:
            files = rebase(write_combined(result, tmp, sources={"predictions": str(predictions),
                                                                "clinical": str(clinical)}), tmp, out)
        for k, f in result.fits.items():
            corrected = result.validation[k].corrected_c
            console.print(f"{k:9s} n={f.n} C={f.stats['C']:.3f} (optimism-corrected {corrected:.3f})")
        lr = result.lr_signature
        console.print(f"signature added to clinical: LR chi2={lr['chi2']:.2f}, df={lr['df']:g}, p={lr['p']:.3g}")
        console.print(f"wrote {files['report']}")


def _check_table_suffix(out: Path) -> None:
    """Refuse, before any work, an output that is neither .csv nor a .parquet this environment can write."""
    if out.suffix.lower() == ".parquet":
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
            raise ConfigError(f"--out {out}: writing Parquet needs pyarrow or fastparquet, neither is installed; "
                              "install one, or give a .csv path")
    elif out.suffix.lower() != ".csv":
        raise ConfigError(f"--out {out}: unknown suffix {out.suffix!r}; use .parquet or .csv")


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    """CSV, or Parquet when the suffix says so (checked by :func:`_check_table_suffix`)."""
    from nodescope._files import atomic_path, atomic_write_csv

    if out.suffix.lower() == ".parquet":
        with atomic_path(out) as tmp:
            frame.to_parquet(tmp, index=False)
    else:
        atomic_write_csv(frame, out, index=False)


def _read_table(path: Path) -> pd.DataFrame:
    from nodescope.errors import MissingFileError

    if not path.is_file():
        raise MissingFileError(f"features table {path} not found")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"patient_id": str, "y_true": str, "split": str}, keep_default_na=False)


def register_radiomics(app: typer.Typer) -> None:
    """Attach ``features`` (penultimate-layer features) and ``signature`` (LASSO deep-radiomics signature)."""

    @app.command(name="features")
    def features_cmd(
        bundle: Annotated[Path, typer.Argument(help="Classifier bundle folder.", show_default=False)],
        inputs: Annotated[list[Path], typer.Argument(help="Manifest CSVs, folders or image files.",
                                                     show_default=False)],
        out: Annotated[Path, typer.Option("-o", "--out", help="features.parquet or features.csv.")
                       ] = Path("features.parquet"),
        pool: Annotated[str, typer.Option(help="'none' (one row per image) or 'mean' (per patient).")] = "none",
        overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    ) -> None:
        """Penultimate-layer (pooled) features of every image, for deep-learning radiomics."""
        from nodescope._files import check_outputs
        from nodescope.clinical._radiomics import extract_features, feature_columns

        if pool not in ("none", "mean"):
            raise ConfigError(f"--pool: must be none or mean, got {pool!r}")
        _check_table_suffix(out)
        check_outputs([out], [bundle, *inputs], overwrite)
        table = extract_features(bundle, inputs, pool=pool)  # type: ignore[arg-type]
        _write_table(table, out)
        console.print(f"{len(table)} rows x {len(feature_columns(table))} features written to {out}")

    @app.command(name="signature")
    def signature_cmd(
        features: Annotated[Path, typer.Argument(help="Features table from 'nodescope features'.",
                                                 show_default=False)],
        out: Annotated[Path, typer.Option("-o", "--out", help="Predictions CSV of the signature (feeds "
                                          "'nodescope nomogram').")] = Path("dlr-predictions.csv"),
        positive: Annotated[str | None, typer.Option(help="The event label of y_true.")] = None,
        folds: Annotated[int, typer.Option(callback=in_range(ge=2), help="Cross-validation folds.")] = 5,
        seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
        overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    ) -> None:
        """LASSO-logistic deep-radiomics signature (CV penalty); out-of-fold scores for development patients."""
        from nodescope._files import atomic_write_csv, check_outputs
        from nodescope.clinical._radiomics import dlr_signature

        selected_out = out.with_name(out.stem + "_selected.csv")
        check_outputs([out, selected_out], [features], overwrite)
        sig = dlr_signature(_read_table(features), positive=positive, folds=folds, seed=seed)
        atomic_write_csv(sig.predictions, out, index=False)
        atomic_write_csv(sig.selected, selected_out, index=False)
        console.print(f"{len(sig.selected)} features selected (C={sig.C:.4g}); out-of-fold AUC {sig.oof_auc:.3f}; "
                      f"wrote {out} and {selected_out}")
