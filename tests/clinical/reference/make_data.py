"""Write lrm_data.csv, the fixed synthetic data set that reference_rms.R and the tests share (run once; committed).

200 patients: age (skewed, years), sex (F/M), stage (I/II/III), marker (continuous, 8 missing) and a binary outcome y
drawn from a logistic model that is non-linear in age and has a sex x marker interaction. Seeded, so rerunning gives
the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261205)
n = 200
age = np.round(25 + rng.gamma(4.0, 8.0, n), 1)
sex = rng.choice(["F", "M"], n, p=[0.6, 0.4])
stage = rng.choice(["I", "II", "III"], n, p=[0.5, 0.3, 0.2])
marker = np.round(rng.normal(0, 1, n), 3)
lp = (-1.2 + 0.002 * (age - 50) ** 2 / 10 + 0.6 * (sex == "M") + np.where(stage == "II", 0.5, 0)
      + np.where(stage == "III", 1.1, 0) + 0.8 * marker - 0.5 * marker * (sex == "M"))
y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
frame = pd.DataFrame({"patient_id": [f"p{i:03d}" for i in range(1, n + 1)], "y": y, "age": age, "sex": sex,
                      "stage": stage, "marker": marker.astype(object)})
frame.loc[rng.choice(n, 8, replace=False), "marker"] = "NA"
frame.to_csv(Path(__file__).with_name("lrm_data.csv"), index=False)
