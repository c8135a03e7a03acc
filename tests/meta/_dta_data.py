"""Published 2x2 counts (TP, FN, FP, TN) of mada 0.5.12's example data sets (R package mada, GPL-2), inline so the
tests run without ../shared. Sources named in mada's help pages (?AuditC, ?Dementia, ?skin_tests)."""

from __future__ import annotations

import pandas as pd

AUDITC = [(47, 9, 101, 738), (126, 51, 272, 1543), (19, 10, 12, 192), (36, 3, 78, 276), (130, 19, 211, 959),
          (84, 2, 68, 89), (68, 0, 112, 423), (752, 0, 3226, 2977), (59, 5, 55, 136), (142, 50, 571, 2788),
          (137, 24, 107, 358), (57, 3, 103, 437), (34, 1, 21, 56), (152, 51, 88, 264)]
DEMENTIA = [(66, 4, 240, 870), (118, 12, 10, 110), (48, 20, 64, 990), (134, 8, 28, 152), (24, 6, 44, 292),
            (68, 16, 48, 154), (64, 18, 0, 72), (282, 64, 20, 286), (14, 2, 44, 286), (262, 20, 30, 178),
            (144, 18, 30, 124), (184, 34, 34, 52), (22, 0, 152, 140), (112, 0, 590, 2092), (152, 82, 126, 1010),
            (30, 26, 26, 236), (32, 6, 4, 248), (10, 4, 12, 334), (708, 88, 1438, 10448), (182, 108, 18, 184),
            (60, 30, 24, 74), (74, 24, 16, 144), (28, 12, 26, 210), (40, 6, 76, 528), (318, 52, 174, 578),
            (388, 116, 16, 54), (118, 66, 2, 44), (44, 8, 34, 396), (124, 46, 98, 310), (26, 44, 4, 172),
            (74, 32, 2, 226), (38, 46, 0, 440), (78, 34, 46, 376)]
SKIN_TESTS = [(8, 1, 3, 184), (4, 7, 4, 559), (2, 3, 3, 122), (7, 4, 60, 90), (1, 5, 1, 28), (7, 7, 7, 75),
              (2, 23, 1, 312), (1, 12, 2, 210), (2, 40, 28, 350), (3, 30, 12, 681)]
INLINE = {"AuditC": AUDITC, "Dementia": DEMENTIA, "skin_tests": SKIN_TESTS}


def frame(name: str) -> pd.DataFrame:
    """The named data set as a DataFrame with columns study, TP, FN, FP, TN."""
    rows = INLINE[name]
    df = pd.DataFrame(rows, columns=["TP", "FN", "FP", "TN"])
    df.insert(0, "study", [f"{name}_{i + 1:02d}" for i in range(len(rows))])
    return df
