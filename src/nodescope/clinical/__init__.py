"""Clinical models: Table 1, rms-style logistic regression with internal validation, and the nomogram.

See docs/clinical.md for the rules each function applies and what it was checked against.
"""

from nodescope.clinical._table import MISSING_TOKENS, VariableKind, column_kinds, read_clinical_table
from nodescope.clinical._table1 import Table1, Table1Row, format_p, smd_categorical, smd_continuous, table1

__all__ = [
    "MISSING_TOKENS",
    "Table1",
    "Table1Row",
    "VariableKind",
    "column_kinds",
    "format_p",
    "read_clinical_table",
    "smd_categorical",
    "smd_continuous",
    "table1",
]
