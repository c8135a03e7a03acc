"""Clinical models: Table 1, rms-style logistic regression with internal validation, and the nomogram.

See docs/clinical.md for the rules each function applies and what it was checked against (scipy, R's rms, Hmisc and
brglm2: the R script and its output are in tests/clinical/reference/).
"""

from nodescope.clinical._design import Design, Limits, Term, build_design, parse_formula
from nodescope.clinical._impute import fit_lrm_imputed, pool_rubin
from nodescope.clinical._lrm import (
    LogisticFit,
    SeparationWarning,
    detect_separation,
    fit_lrm,
    gini_md,
    lrm_indexes,
)
from nodescope.clinical._lrm_tests import effects, lr_tests, wald_anova
from nodescope.clinical._nomogram import Nomogram, NomogramAxis, nomogram, plot_nomogram, pretty
from nodescope.clinical._radiomics import DlrSignature, dlr_signature, extract_features, feature_columns
from nodescope.clinical._rcs import rcs_basis, rcs_knots
from nodescope.clinical._reclass import Reclassification, reclassification
from nodescope.clinical._table import MISSING_TOKENS, VariableKind, column_kinds, read_clinical_table
from nodescope.clinical._table1 import Table1, Table1Row, format_p, smd_categorical, smd_continuous, table1
from nodescope.clinical._validate import Calibration, Validation, calibrate, validate

__all__ = [
    "MISSING_TOKENS",
    "Calibration",
    "Design",
    "DlrSignature",
    "Limits",
    "LogisticFit",
    "Nomogram",
    "NomogramAxis",
    "Reclassification",
    "SeparationWarning",
    "Table1",
    "Table1Row",
    "Term",
    "Validation",
    "VariableKind",
    "build_design",
    "calibrate",
    "column_kinds",
    "detect_separation",
    "dlr_signature",
    "effects",
    "extract_features",
    "feature_columns",
    "fit_lrm",
    "fit_lrm_imputed",
    "format_p",
    "gini_md",
    "lr_tests",
    "lrm_indexes",
    "nomogram",
    "parse_formula",
    "plot_nomogram",
    "pool_rubin",
    "pretty",
    "rcs_basis",
    "rcs_knots",
    "read_clinical_table",
    "reclassification",
    "smd_categorical",
    "smd_continuous",
    "table1",
    "validate",
    "wald_anova",
]
