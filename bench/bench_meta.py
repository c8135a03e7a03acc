"""Timings of the meta-analysis models on 40 synthetic cohorts (and R's glmer on the same data when Rscript exists).

Run: ``PYTHONPATH=src python bench/bench_meta.py``. Targets (issue 5): bivariate REML < 50 ms, GLMM < 1 s; issue 15:
the Laplace GLMM faster than ``lme4::glmer`` on the same data (ratio < 1, from interleaved rounds of both).
The data are synthetic (seeded draws from the bivariate binomial model), used only for timing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from nodescope.meta import bivariate_glmm, reitsma

R_SCRIPT = """
suppressMessages(library(lme4))
d <- read.csv(commandArgs(TRUE)[1])
L <- rbind(data.frame(study = d$study, events = d$TP, n = d$TP + d$FN, sens = 1, spec = 0),
           data.frame(study = d$study, events = d$TN, n = d$TN + d$FP, sens = 0, spec = 1))
t <- replicate(5, system.time(glmer(cbind(events, n - events) ~ 0 + sens + spec + (0 + sens + spec | study),
                                    data = L, family = binomial))[["elapsed"]])
cat(median(t), "\\n")
"""


def synthetic(k: int = 40, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cov = np.array([[0.8, -0.3], [-0.3, 0.6]])
    eta = rng.multivariate_normal([1.6, 1.9], cov, size=k)
    n1 = rng.integers(20, 200, size=k)
    n0 = rng.integers(40, 400, size=k)
    tp = rng.binomial(n1, 1 / (1 + np.exp(-eta[:, 0])))
    tn = rng.binomial(n0, 1 / (1 + np.exp(-eta[:, 1])))
    return pd.DataFrame({"study": [f"s{i:02d}" for i in range(k)], "TP": tp, "FN": n1 - tp, "FP": n0 - tn, "TN": tn})


def timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def glmer_seconds(df: pd.DataFrame) -> float | None:
    """Median of 5 ``glmer`` fits in one Rscript process (None without Rscript or when R fails)."""
    if not shutil.which("Rscript"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "b.R"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(csv)], capture_output=True, text=True, check=False)
    try:
        return float(out.stdout.split()[0])
    except (IndexError, ValueError):
        print(f"  R glmer timing failed: {out.stderr.strip()[:200]}")
        return None


def loo_seconds(df: pd.DataFrame, warm: bool) -> float:
    """Leave-one-out over all cohorts with or without the warm start from the fit on all cohorts."""
    t0 = time.perf_counter()
    full = bivariate_glmm(df) if warm else None
    for i in range(len(df)):
        bivariate_glmm(df.drop(index=df.index[i]), start=full)
    return time.perf_counter() - t0


def main(rounds: int = 5) -> None:
    df = synthetic()
    warnings.simplefilter("ignore")
    rows = [
        ("reitsma REML (fit + all summaries)", timed(lambda: reitsma(df), 11), 0.05),
        ("reitsma ML (fit + all summaries)", timed(lambda: reitsma(df, method="ML"), 11), 0.05),
        ("GLMM AGHQ 9x9 nodes", timed(lambda: bivariate_glmm(df, method="aghq", n_nodes=9), 3), None),
    ]
    print("40 synthetic cohorts, median wall time (this machine):")
    for name, t, target in rows:
        flag = "" if target is None else ("  OK" if t < target else f"  SLOWER than target {target:g} s")
        print(f"  {name:40s} {t * 1e3:8.1f} ms{flag}")
    cold, warm_t = loo_seconds(df, warm=False), loo_seconds(df, warm=True)
    print(f"  {'GLMM leave-one-out, 40 refits, cold':40s} {cold * 1e3:8.1f} ms")
    print(f"  {'GLMM leave-one-out, warm starts':40s} {warm_t * 1e3:8.1f} ms  (incl. the full fit)")
    # ours and glmer's interleaved, round by round, so a change in the machine's load hits both alike
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(timed(lambda: bivariate_glmm(df), 5))
        r_t = glmer_seconds(df)
        if r_t is not None:
            theirs.append(r_t)
    spread = f"(rounds: {', '.join(f'{t * 1e3:.0f}' for t in ours)})"
    print(f"  {'GLMM Laplace (fit + SEs + summaries)':40s} {np.median(ours) * 1e3:8.1f} ms  {spread}")
    if len(theirs) == len(ours):
        ratios = np.array(ours) / np.array(theirs)
        print(f"  {'R lme4::glmer (Laplace, default control)':40s} {np.median(theirs) * 1e3:8.1f} ms  "
              f"(rounds: {', '.join(f'{t * 1e3:.0f}' for t in theirs)})")
        print(f"  ratio nodescope/glmer per round: {', '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {np.median(ratios):.2f}, range {ratios.min():.2f}-{ratios.max():.2f})")
    else:
        print("  Rscript/lme4 not available: no glmer comparison")


if __name__ == "__main__":
    main()
