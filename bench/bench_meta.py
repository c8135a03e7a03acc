"""Timings of the meta-analysis models on 40 synthetic cohorts (and R's glmer on the same data when Rscript exists).

Run: ``PYTHONPATH=src python bench/bench_meta.py``. Targets (issue 5): bivariate REML < 50 ms, GLMM < 1 s.
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


def main() -> None:
    df = synthetic()
    warnings.simplefilter("ignore")
    rows = [
        ("reitsma REML (fit + all summaries)", timed(lambda: reitsma(df), 11), 0.05),
        ("reitsma ML (fit + all summaries)", timed(lambda: reitsma(df, method="ML"), 11), 0.05),
        ("GLMM Laplace (fit + SEs + summaries)", timed(lambda: bivariate_glmm(df), 5), 1.0),
        ("GLMM AGHQ 9x9 nodes", timed(lambda: bivariate_glmm(df, method="aghq", n_nodes=9), 3), None),
    ]
    print("40 synthetic cohorts, median wall time (this machine):")
    for name, t, target in rows:
        flag = "" if target is None else ("  OK" if t < target else f"  SLOWER than target {target:g} s")
        print(f"  {name:40s} {t * 1e3:8.1f} ms{flag}")
    if shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            csv, script = Path(tmp) / "d.csv", Path(tmp) / "b.R"
            df.to_csv(csv, index=False)
            script.write_text(R_SCRIPT)
            out = subprocess.run(["Rscript", str(script), str(csv)], capture_output=True, text=True, check=False)
        try:
            r_t = float(out.stdout.split()[0])
            print(f"  {'R lme4::glmer (Laplace, default control)':40s} {r_t * 1e3:8.1f} ms"
                  f"  -> ratio nodescope/glmer = {rows[2][1] / r_t:.2f}")
        except (IndexError, ValueError):
            print(f"  R glmer timing failed: {out.stderr.strip()[:200]}")
    else:
        print("  Rscript not found: no glmer comparison")


if __name__ == "__main__":
    main()
