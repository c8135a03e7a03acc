"""Tables, figures and the HTML report of the combined (DL signature + clinical) models: one writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nodescope._files import atomic_write_csv, atomic_write_text
from nodescope.clinical._combine import CombinedModels, model_table
from nodescope.clinical._lrm_tests import effects, wald_anova
from nodescope.clinical._nomogram import plot_nomogram
from nodescope.clinical._table1 import format_p

__all__ = ["comparison_table", "plot_overfitting_calibration", "write_combined"]


def comparison_table(result: CombinedModels) -> pd.DataFrame:
    """DeLong tests, NRI / IDI and the LR test of the signature, one row each, on the development patients."""
    rows = []
    for name, comp in result.delong.items():
        d = comp.difference
        rows.append({"comparison": f"C: {name}", "estimate": d.estimate, "ci_low": d.ci_low, "ci_high": d.ci_high,
                     "p": comp.p_value, "method": "DeLong (paired)"})
    for est in (result.reclass.nri, result.reclass.nri_events, result.reclass.nri_nonevents, result.reclass.idi):
        rows.append({"comparison": f"{est.name}: combined vs clinical", "estimate": est.estimate,
                     "ci_low": est.ci_low, "ci_high": est.ci_high, "p": est.extra["p_value"], "method": est.method})
    lr = result.lr_signature
    rows.append({"comparison": "LR test: signature added to the clinical model", "estimate": lr["chi2"],
                 "ci_low": np.nan, "ci_high": np.nan, "p": lr["p"], "method": f"chi-square, {lr['df']:g} d.f."})
    return pd.DataFrame(rows)


def plot_overfitting_calibration(result: CombinedModels) -> Figure:
    """Apparent and bootstrap overfitting-corrected calibration curves of each model (rms ``plot(calibrate)``)."""
    fig = Figure(figsize=(5.2, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="ideal")
    for name, cal in result.calibration.items():
        t = cal.table
        (line,) = ax.plot(t["predy"], t["calibrated.corrected"], label=f"{name} (bias-corrected)")
        ax.plot(t["predy"], t["calibrated.orig"], color=line.get_color(), ls="--", lw=0.8,
                label=f"{name} (apparent)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="observed (lowess)",
           title=f"Calibration, B = {next(iter(result.calibration.values())).B} bootstrap repetitions",
           aspect="equal")
    ax.legend(fontsize="x-small", loc="upper left")
    return fig


def _figure_files(fig: Figure, out: Path, stem: str) -> str:
    fig.savefig(out / f"{stem}.png", dpi=150, bbox_inches="tight")
    return f"{stem}.png"


def write_combined(result: CombinedModels, out: str | Path, *, sources: dict[str, str] | None = None
                   ) -> dict[str, Path]:
    """Write the tables (CSV), figures (PNG), ``results.json`` and ``report.html`` into ``out``.

    Parameters
    ----------
    result : CombinedModels
    out : path
        The (new or temporary) output folder; the caller makes the write atomic (``nodescope._files.atomic_folder``).
    sources : dict, optional
        Input files named in the report.

    Returns
    -------
    dict
        Name -> path of every file written.
    """
    from nodescope.evaluation import plot_decision_curve, reliability_curve
    from nodescope.evaluation._plots import plot_calibration
    from nodescope.report import HtmlReport

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    models = model_table(result)
    comps = comparison_table(result)
    coefs = pd.concat([f.coef_frame().reset_index(names="term").assign(model=k) for k, f in result.fits.items()])
    validation = pd.concat([v.table.reset_index(names="index").assign(model=k) for k, v in result.validation.items()])
    calib = pd.concat([c.table.assign(model=k) for k, c in result.calibration.items()])
    preds = result.data[["patient_id", "y"]].copy()
    for k, f in result.fits.items():
        preds[f"p_{k}"] = 1 / (1 + np.exp(-f.linear_predictor))
    for name, frame in (("models", models), ("comparisons", comps), ("coefficients", coefs),
                        ("validation", validation), ("calibration", calib), ("fitted", preds)):
        files[name] = atomic_write_csv(frame, out / f"{name}.csv", index=False)
    rep = HtmlReport("DL signature + clinical model: nomogram")
    rep.heading("Data")
    rep.bullets([f"{k}: {v}" for k, v in (sources or {}).items()] + list(result.notes))
    rep.heading("Models (development patients)")
    rep.table(models.drop(columns=["formula"]), caption="C corrected, slope corrected and R2 corrected: bootstrap "
              "optimism correction (Harrell's validate).")
    rep.bullets([f"{k}: {f}" for k, f in result.formulas.items()])
    rep.heading("Does the signature add to the clinical model?")
    shown = comps.assign(p=comps.p.map(format_p))
    rep.table(shown, caption="Positive differences favour the first-named model.")
    comb = result.fits["combined"]
    rep.heading("Combined model")
    rep.paragraph(f"Fitted by {comb.method}; {comb.missing}.")
    rep.table(comb.coef_frame().reset_index(names="term").assign(P=lambda f: f.P.map(format_p)),
              caption="Coefficients (log odds) and odds ratios per design column, Wald 95% intervals.")
    rep.table(effects(comb), caption="Effects: inter-quartile (continuous) and level vs reference odds ratios, "
              "others at median / mode (rms summary).")
    an = wald_anova(comb).reset_index(names="factor")
    rep.table(an.assign(P=an.P.map(format_p)), caption="Wald tests (rms anova).")
    val = result.validation["combined"]
    rep.table(val.table.reset_index(names="index"),
              caption=f"Bootstrap internal validation (rms validate), B = {val.B}"
              + (f"; {val.failed} resamples left out (refit did not converge)" if val.failed else "") + ".")
    figs: list[tuple[str, Figure, str]] = []
    if result.nomogram is not None:
        files["nomogram_points"] = atomic_write_csv(result.nomogram.to_frame(), out / "nomogram_points.csv",
                                                    index=False)
        figs.append(("nomogram", plot_nomogram(result.nomogram), "Nomogram of the combined model: points per "
                     "predictor, total points to probability."))
    figs.append(("calibration_bootstrap", plot_overfitting_calibration(result), "Apparent and overfitting-corrected "
                 "calibration (rms calibrate)."))
    y = comb.y
    p = 1 / (1 + np.exp(-comb.linear_predictor))
    figs.append(("calibration_combined", plot_calibration(reliability_curve(y, p, n_boot=200), label="combined"),
                 "Calibration of the combined model (evaluation module)."))
    figs.append(("decision_curve", plot_decision_curve(result.decision),
                 "Decision curves on the development patients (apparent)."))
    cal = result.calibration_summary
    rep.table(cal.summary_frame(), caption="Calibration of the combined model on the development "
              "patients (apparent).")
    for ho in result.held_out:
        rep.heading(f"Held-out split: {ho.split} (n = {ho.n}, events = {ho.n_events})")
        rows = [{"model": k, "AUC": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high}
                for k, e in ho.auc.items()]
        rep.table(pd.DataFrame(rows), caption="AUC with DeLong 95% intervals; models fitted on development data.")
        rows = [{"comparison": k, "difference": c.difference.estimate, "ci_low": c.difference.ci_low,
                 "ci_high": c.difference.ci_high, "p": format_p(c.p_value)}
                for k, c in ho.comparisons.items()]
        rep.table(pd.DataFrame(rows), caption="DeLong tests on the held-out patients.")
        rep.table(ho.calibration.summary_frame(), caption="Calibration of the combined model.")
        figs.append((f"decision_curve_{ho.split}", plot_decision_curve(ho.decision),
                     f"Decision curves, {ho.split} split."))
    rep.heading("Figures")
    for stem, fig, caption in figs:
        files[stem] = out / _figure_files(fig, out, stem)
        rep.figure(fig, caption=caption)
    summary = {"formulas": result.formulas, "models": models.to_dict(orient="records"),
               "comparisons": comps.replace({np.nan: None}).to_dict(orient="records"),
               "held_out": [{"split": h.split, "n": h.n, "auc": {k: e.to_dict() for k, e in h.auc.items()}}
                            for h in result.held_out],
               "notes": list(result.notes), "sources": sources or {}}
    files["results"] = atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=float))
    files["report"] = atomic_write_text(out / "report.html", rep.render())
    return files
