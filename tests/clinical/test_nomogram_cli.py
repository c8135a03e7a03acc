"""The combined model (DL signature + clinical) end to end on a tiny synthetic cohort, and the nomogram property."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nodescope.cli import app
from nodescope.clinical import fit_lrm, nomogram
from nodescope.clinical._combine import combine_signature, join_signature
from nodescope.errors import ConfigError, DataError


def _cohort(tmp_path, n=160, seed=3, images_per_patient=1):
    rng = np.random.default_rng(seed)
    age = np.round(rng.normal(55, 12, n), 1)
    sex = rng.choice(["F", "M"], n)
    latent = rng.normal(0, 1, n)
    lp = -0.5 + 0.04 * (age - 55) + 0.5 * (sex == "M") + 1.5 * latent
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    ids = [f"p{i:03d}" for i in range(n)]
    split = np.where(np.arange(n) < int(0.75 * n), "cv", "test")
    rows = []
    for i in range(n):
        for _ in range(images_per_patient):
            p1 = 1 / (1 + np.exp(-(1.2 * latent[i] + rng.normal(0, 0.6))))
            rows.append({"patient_id": ids[i], "y_true": str(y[i]), "p_0": 1 - p1, "p_1": p1, "split": split[i],
                         "fold": i % 5 if split[i] == "cv" else -1, "model": "cnn", "run_id": "r1"})
    pred = tmp_path / "predictions.csv"
    pd.DataFrame(rows).to_csv(pred, index=False)
    clin = tmp_path / "clinical.csv"
    ages = [str(a) for a in age]
    ages[5] = "NA"  # one development patient without age: dropped from all three models
    pd.DataFrame({"patient_id": ids, "age": ages, "sex": sex}).to_csv(clin, index=False)
    return pred, clin


def test_points_add_up_to_the_linear_predictor(rng):
    # property: for random patients (not only axis values) total points map back to the model's linear predictor
    n = 300
    frame = pd.DataFrame({"y": rng.integers(0, 2, n).astype(str), "age": rng.normal(50, 10, n).round(2).astype(str),
                          "grade": rng.choice(["a", "b", "c"], n), "score": rng.normal(0, 1, n).astype(str)})
    fit = fit_lrm("y ~ rcs(age, 4) + grade + score", frame)
    nom = nomogram(fit)
    for _ in range(5):
        idx = rng.integers(0, n, 40)
        new = frame.iloc[idx].reset_index(drop=True)
        new["age"] = rng.uniform(20, 80, 40).astype(str)  # off the axis ticks, even outside the data
        np.testing.assert_allclose(nom.linear_predictor(nom.total_points(new)), fit.predict_lp(new), atol=1e-10)
    widest = max(max(a.points) - min(a.points) for a in nom.axes)
    assert widest == pytest.approx(100) and min(min(a.points) for a in nom.axes) == 0


def test_nomogram_refuses_interactions(rng):
    frame = pd.DataFrame({"y": rng.integers(0, 2, 80).astype(str), "a": rng.normal(0, 1, 80).astype(str),
                          "b": rng.choice(["u", "v"], 80)})
    with pytest.raises(ConfigError, match="interaction"):
        nomogram(fit_lrm("y ~ a * b", frame))


def test_combined_models_and_held_out_split(tmp_path):
    pred, clin = _cohort(tmp_path, images_per_patient=2)
    data, notes = join_signature(pred, clin)
    assert len(data) == 160 and any("pooled to 160 patients" in n for n in notes)
    res = combine_signature(data, "age + sex", B=20, seed=1, notes=notes)
    n_dev = 120 - 1
    assert {f.n for f in res.fits.values()} == {n_dev}  # same patients in all three models
    assert any("complete-case" in n and "1 of 120" in n for n in res.notes)
    # the signature carries the latent risk: it adds to the clinical model
    assert res.lr_signature["p"] < 0.01 and res.delong["combined vs clinical"].difference.estimate > 0
    # LR test of the signature = difference of the two model LR chi-squares (nested models, same patients)
    assert res.lr_signature["chi2"] == pytest.approx(res.fits["combined"].stats["Model L.R."]
                                                     - res.fits["clinical"].stats["Model L.R."])
    assert [h.split for h in res.held_out] == ["test"] and res.held_out[0].n == 40
    assert res.nomogram is not None


def test_cli_writes_report_and_refuses_existing(tmp_path):
    pred, clin = _cohort(tmp_path)
    out = tmp_path / "nom"
    runner = CliRunner()
    args = ["nomogram", str(pred), str(clin), "--terms", "age + sex", "-o", str(out), "--n-boot", "10"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "optimism-corrected" in res.output
    for name in ("report.html", "models.csv", "comparisons.csv", "nomogram.png", "nomogram_points.csv",
                 "validation.csv", "results.json", "fitted.csv"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "complete-case" in html and "Held-out split: test" in html
    summary = json.loads((out / "results.json").read_text())
    fitted = pd.read_csv(out / "fitted.csv")
    # every reported C is recomputable from the saved fitted probabilities
    from nodescope.evaluation import roc_auc
    c = {m["model"]: m["C"] for m in summary["models"]}
    assert roc_auc(fitted.y, fitted.p_combined).estimate == pytest.approx(c["combined"], abs=1e-9)
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "error:" in again.output


def test_join_errors(tmp_path):
    pred, clin = _cohort(tmp_path)
    other = tmp_path / "other.csv"
    pd.DataFrame({"patient_id": ["x1", "x2"], "age": ["1", "2"]}).to_csv(other, index=False)
    with pytest.raises(DataError, match="no patient_id is shared"):
        join_signature(pred, other)
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"patient_id": ["p001", "p001"], "age": ["1", "2"]}).to_csv(dup, index=False)
    with pytest.raises(DataError, match="more than once"):
        join_signature(pred, dup)
    with pytest.raises(ConfigError, match="no model 'vit'"):
        join_signature(pred, clin, model="vit")


def test_multiple_imputation_keeps_the_patient_and_says_so(tmp_path):
    pred, clin = _cohort(tmp_path)
    data, _ = join_signature(pred, clin)
    res = combine_signature(data, "age + sex", B=5, seed=1, missing="impute", m=2)
    assert {f.n for f in res.fits.values()} == {120}  # the patient without age is imputed, not dropped
    assert any("multiple imputation" in n for n in res.notes)
    assert "multiple imputation" in res.fits["combined"].missing


def test_text_outcome_from_the_clinical_table(tmp_path):
    pred, clin = _cohort(tmp_path)
    c = pd.read_csv(clin, dtype=str, keep_default_na=False)
    p = pd.read_csv(pred, dtype=str)
    c["status"] = c.patient_id.map(dict(zip(p.patient_id, p.y_true.map({"1": "N1", "0": "N0"}), strict=False)))
    c.to_csv(clin, index=False)
    data, _ = join_signature(pred, clin, outcome="status")
    res = combine_signature(data, "age + sex", B=5, seed=1)
    ref = combine_signature(join_signature(pred, clin)[0], "age + sex", B=5, seed=1)
    # "N1" (second in sorted order) is the event: the same fits as with the predictions' 0/1 y_true
    np.testing.assert_allclose(res.fits["combined"].coef, ref.fits["combined"].coef)
    assert res.held_out[0].n_events == ref.held_out[0].n_events


def test_report_page_renders_its_figures_in_chromium(tmp_path):
    from browser import chromium_page

    pred, clin = _cohort(tmp_path)
    out = tmp_path / "nom"
    res = CliRunner().invoke(app, ["nomogram", str(pred), str(clin), "--terms", "age + sex", "-o", str(out),
                                   "--n-boot", "5"])
    assert res.exit_code == 0, res.output
    with chromium_page() as page:
        page.goto((out / "report.html").as_uri())
        assert page.title() == "DL signature + clinical model: nomogram"
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) >= 5 and all(w > 100 for w in widths)  # nomogram, calibrations, decision curves
        assert page.locator("text=Held-out split: test").count() == 1
        assert page.locator("table").count() >= 6
