"""Speed of the evaluation core (prints figures; not a test).

    PYTHONPATH=src python bench/bench_evaluation.py

Targets (issue 4): DeLong AUC + CI on 1,000,000 scores < 2 s; 2,000 stratified bootstrap AUC replicates on
n = 1,000 < 2 s on 2 cores; ratio against scikit-learn's ``roc_auc_score`` called in a loop on the same replicates.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from nodescope.evaluation import roc_auc
from nodescope.evaluation._bootstrap import bootstrap_weights, make_rng


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}")

    n = 1_000_000
    y = rng.integers(0, 2, n)
    s = rng.normal(y * 0.8, 1.0)
    t = best_of(lambda: roc_auc(y, s, method="delong"))
    est = roc_auc(y, s)
    print(f"DeLong AUC + 95% CI, n = {n:,}: {t:.3f} s  ({est.format(4)})")
    s_tied = np.round(s, 1)
    t = best_of(lambda: roc_auc(y, s_tied, method="delong"))
    print(f"DeLong AUC + 95% CI, n = {n:,}, heavy ties (1 decimal): {t:.3f} s")
    t_sk = best_of(lambda: roc_auc_score(y, s), repeat=3)
    print(f"  (sklearn roc_auc_score alone, no CI, n = {n:,}: {t_sk:.3f} s)")

    n, b = 1_000, 2_000
    y = rng.integers(0, 2, n)
    s = rng.normal(y * 0.8, 1.0)
    t_ours = best_of(lambda: roc_auc(y, s, method="bootstrap", n_boot=b, seed=1))
    print(f"stratified bootstrap AUC, {b:,} replicates, n = {n:,}: {t_ours:.3f} s")

    w = bootstrap_weights(y.astype(bool), n_boot=b, rng=make_rng(1))
    idx = [np.repeat(np.arange(n), wi) for wi in w]

    def sk_loop() -> None:
        for i in idx:
            roc_auc_score(y[i], s[i])

    t_loop = best_of(sk_loop, repeat=1)
    print(f"sklearn roc_auc_score in a loop over the same {b:,} replicates: {t_loop:.3f} s "
          f"-> nodescope is {t_loop / t_ours:.1f}x faster")

    g = np.arange(n) // 3
    t_cl = best_of(lambda: roc_auc(y, s, method="bootstrap", n_boot=b, groups=g))
    print(f"clustered bootstrap AUC (333 clusters of 3), {b:,} replicates, n = {n:,}: {t_cl:.3f} s")


if __name__ == "__main__":
    main()
