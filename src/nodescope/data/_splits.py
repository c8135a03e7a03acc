"""Patient-level splits: an image never leaves its patient.

Every function here works on *groups* (``patient_id``, or another column such as BUSI's ``dup_group`` when patients
are unknown): a group is assigned to exactly one part, and within cross-validation to exactly one fold. The result is
a table aligned with the manifest rows, so it can be saved beside a run and checked with :func:`check_leakage`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from nodescope.errors import ConfigError, DataError

__all__ = ["LeakageError", "SplitMethod", "check_leakage", "make_splits", "split_summary"]

SplitMethod = Literal["kfold", "holdout", "site", "temporal", "leave-one-site-out"]
_METHODS = ("kfold", "holdout", "site", "temporal", "leave-one-site-out")


class LeakageError(DataError):
    """A group (patient) appears in more than one part or fold."""


def _group_labels(frame: pd.DataFrame, group_col: str, label_col: str) -> pd.Series:
    """One label per group for stratification: the most frequent label of its rows (ties: first in sort order)."""
    counts = frame.groupby([group_col, label_col]).size().rename("n").reset_index()
    counts = counts.sort_values([group_col, "n", label_col], ascending=[True, False, True])
    return counts.drop_duplicates(group_col).set_index(group_col)[label_col]


def _stratified_group_holdout(groups: pd.Series, size: float, seed: int, what: str) -> set:
    """Pick about ``size`` of the groups, stratified by the groups' labels."""
    if not 0.0 < size < 1.0:
        raise ConfigError(f"{what} must be between 0 and 1 (exclusive); got {size}")
    idx = groups.index.to_numpy()
    labels = groups.to_numpy()
    counts = pd.Series(labels).value_counts()
    stratify = labels if counts.min() >= 2 and round(size * len(idx)) >= len(counts) else None
    _, held = train_test_split(idx, test_size=size, random_state=seed, stratify=stratify)
    return set(held.tolist())


def make_splits(
    frame: pd.DataFrame,
    *,
    method: SplitMethod = "kfold",
    group_col: str = "patient_id",
    label_col: str = "label",
    n_splits: int = 5,
    test_size: float = 0.0,
    val_size: float = 0.0,
    seed: int = 0,
    site_col: str = "site",
    external_sites: Sequence[str] | None = None,
    date_col: str = "date",
    cutoff: str | _dt.date | None = None,
) -> pd.DataFrame:
    """Assign every row to a part (and a fold), keeping each group whole.

    Parameters
    ----------
    frame : pandas.DataFrame
        Manifest rows (``Manifest.frame``); needs ``group_col`` and ``label_col``.
    method : {"kfold", "holdout", "site", "temporal"}
        - ``"kfold"``: stratified group k-fold (scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold`,
          shuffled with ``seed``); rows get part ``"cv"`` and folds ``0..n_splits-1``. With ``test_size > 0`` a
          stratified hold-out ``"test"`` part is set aside first and the folds are made from the rest.
        - ``"holdout"``: parts ``"train"``, ``"val"`` (if ``val_size > 0``) and ``"test"`` by group, stratified by the
          groups' majority label; ``test_size`` and ``val_size`` are fractions of the groups.
        - ``"site"``: rows from ``external_sites`` become ``"external"``; the other sites are split like
          ``"kfold"`` (``n_splits > 1``) or into ``"train"``/``"val"``.
        - ``"temporal"``: groups whose first exam date is on or after ``cutoff`` become ``"test"`` (a later period);
          without ``cutoff``, the date that leaves about ``test_size`` of the groups for the test part is used.
          Earlier groups are split like ``"kfold"`` or ``"train"``/``"val"``.
        - ``"leave-one-site-out"``: cross-validation whose every fold is one whole site of ``site_col`` (sites in
          sorted order: fold k is the k-th site), so each fold's model is tested on a site it never saw; part
          ``"cv"``, one fold per site (``n_splits`` is not used), and a ``site`` column in the result. With
          ``test_size > 0`` a stratified hold-out ``"test"`` part (drawn across sites) is set aside first.
          Needs at least 2 sites; every group must come from one site.
    group_col, label_col : str
        Grouping and label columns.
    n_splits : int
        Number of folds for k-fold (>= 2); for ``"site"``/``"temporal"`` set 1 for no folds.
    test_size, val_size : float
        Fractions of groups held out (0 for none).
    seed : int
        Random seed; the same inputs and seed always give the same split.
    site_col, external_sites : str, sequence of str
        Site column and the sites kept for external validation.
    date_col, cutoff : str, str or date
        Date column (ISO 8601) and the temporal cut-off date.

    Returns
    -------
    pandas.DataFrame
        Same index as ``frame``; columns ``group``, ``label``, ``part`` and ``fold`` (``-1`` outside folds), and
        ``site`` for ``"leave-one-site-out"``.

    Raises
    ------
    ValueError
        For an unknown method, missing columns, impossible sizes, or a group spanning sites.
    """
    _check_split_inputs(frame, method, group_col, label_col)
    out = pd.DataFrame(
        {"group": frame[group_col].astype(str), "label": frame[label_col].astype(str), "part": "", "fold": -1},
        index=frame.index,
    )
    glabels = _group_labels(out.rename(columns={"group": group_col, "label": label_col}), group_col, label_col)
    pool = glabels  # groups still to assign

    if method == "site":
        held_part, held = "external", _external_site_groups(frame, out, site_col, external_sites)
    elif method == "temporal":
        held_part, held = "test", _late_groups(frame, out, date_col, cutoff, test_size)
    elif test_size > 0:
        held_part, held = "test", _stratified_group_holdout(glabels, test_size, seed, "test_size")
    else:
        held_part, held = "", set()
    if held:
        out.loc[out["group"].isin(held), "part"] = held_part
        pool = glabels[~glabels.index.isin(list(held))]

    if method in ("site", "temporal") and n_splits >= 2 and val_size > 0:
        raise ConfigError(f"val_size is not used when method={method!r} makes {n_splits} folds; set n_splits=1 for a "
                         "train/val split of the development part")
    if method == "leave-one-site-out":
        return _leave_one_site_out(frame, out, pool, site_col, val_size)
    if method == "site" and test_size > 0:
        raise ConfigError("test_size is not used with method='site' (the external site is the test part); "
                         "set test_size=0")
    rest = out["group"].isin(pool.index)
    if method == "holdout" or (method in ("site", "temporal") and n_splits < 2):
        if method == "holdout" and test_size <= 0:
            raise ConfigError("method 'holdout' needs test_size > 0")
        out.loc[rest, "part"] = "train"
        if val_size > 0:
            frac = val_size / max(1e-12, 1.0 - (test_size if method == "holdout" else 0.0))
            held = _stratified_group_holdout(pool, min(frac, 0.99), seed + 1, "val_size")
            out.loc[out["group"].isin(held), "part"] = "val"
        return out

    if n_splits < 2:
        raise ConfigError(f"n_splits must be >= 2 for k-fold; got {n_splits}")
    if len(pool) < n_splits:
        raise DataError(f"{len(pool)} groups cannot be split into {n_splits} folds")
    sub = out[rest]
    sgkf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = np.full(len(sub), -1, dtype=int)
    for k, (_, test_idx) in enumerate(sgkf.split(np.zeros(len(sub)), sub["label"], groups=sub["group"])):
        folds[test_idx] = k
    out.loc[rest, "part"] = "cv"
    out.loc[rest, "fold"] = folds
    return out


def _check_split_inputs(frame: pd.DataFrame, method: str, group_col: str, label_col: str) -> None:
    """Fail on an unknown method, a missing group/label column, or rows without a group."""
    if method not in _METHODS:
        raise ConfigError(f"unknown split method {method!r}; expected one of {list(_METHODS)}")
    for col in (group_col, label_col):
        if col not in frame.columns:
            raise DataError(f"column '{col}' not found; columns: {list(frame.columns)}")
    empty = frame.index[frame[group_col].astype(str).str.strip() == ""]
    if len(empty):
        raise DataError(f"column '{group_col}' is empty on {len(empty)} row(s) (e.g. index {list(empty[:5])})")


def _check_one_site_per_group(out: pd.DataFrame, sites: pd.Series) -> None:
    """Refuse groups with rows from several sites (a group cannot be split by site)."""
    span = pd.DataFrame({"g": out["group"], "s": sites}).groupby("g")["s"].nunique()
    multi = span[span > 1]
    if len(multi):
        raise DataError(f"{len(multi)} group(s) have images from several sites, e.g. {list(multi.index[:5])}")


def _sites_of_groups(frame: pd.DataFrame, out: pd.DataFrame, site_col: str, method: str) -> pd.Series:
    """The site of every row; refused when the column is missing or empty, or a group spans several sites."""
    if site_col not in frame.columns:
        raise DataError(f"method {method!r} needs column '{site_col}'; columns: {list(frame.columns)}")
    sites = frame[site_col].astype(str).str.strip()
    empty = frame.index[sites == ""]
    if len(empty):
        raise DataError(f"method {method!r}: column '{site_col}' is empty on {len(empty)} row(s) (e.g. index "
                        f"{list(empty[:5])}); every row needs its site")
    _check_one_site_per_group(out, sites)
    return sites


def _leave_one_site_out(frame: pd.DataFrame, out: pd.DataFrame, pool: pd.Series, site_col: str,
                        val_size: float) -> pd.DataFrame:
    """Folds = sites (sorted) for the groups still in ``pool``; the held-out test part is already assigned."""
    sites = _sites_of_groups(frame, out, site_col, "leave-one-site-out")
    if val_size > 0:
        raise ConfigError("val_size is not used with method='leave-one-site-out' (every fold is one site); "
                          "set val_size=0")
    rest = out["group"].isin(pool.index)
    names = sorted(set(sites[rest]))
    if len(names) < 2:
        raise DataError(f"method 'leave-one-site-out' needs at least 2 sites in column '{site_col}'; found {names}")
    out["site"] = sites
    out.loc[rest, "part"] = "cv"
    out.loc[rest, "fold"] = sites[rest].map({s: k for k, s in enumerate(names)}).astype(int)
    return out


def _external_site_groups(
    frame: pd.DataFrame, out: pd.DataFrame, site_col: str, external_sites: Sequence[str] | None
) -> set[str]:
    """The groups imaged at ``external_sites`` (method ``"site"``); every group must come from one site."""
    if site_col not in frame.columns:
        raise DataError(f"method 'site' needs column '{site_col}'; columns: {list(frame.columns)}")
    if not external_sites:
        raise ConfigError("method 'site' needs external_sites (the sites kept for external validation)")
    sites = frame[site_col].astype(str)
    unknown = sorted(set(external_sites) - set(sites))
    if unknown:
        raise DataError(f"external site(s) {unknown} not found in column '{site_col}'; sites: {sorted(set(sites))}")
    _check_one_site_per_group(out, sites)
    return set(out.loc[sites.isin(list(external_sites)), "group"])


def _late_groups(
    frame: pd.DataFrame, out: pd.DataFrame, date_col: str, cutoff: str | _dt.date | None, test_size: float
) -> set[str]:
    """The groups whose first exam is on or after the cut-off (method ``"temporal"``)."""
    if date_col not in frame.columns:
        raise DataError(f"method 'temporal' needs column '{date_col}'; columns: {list(frame.columns)}")
    dates = pd.to_datetime(frame[date_col].astype(str), format="ISO8601", errors="coerce")
    bad = frame.index[dates.isna()]
    if len(bad):
        raise DataError(
            f"column '{date_col}' has missing or non-ISO dates on {len(bad)} row(s), e.g. index {list(bad[:5])} "
            f"values {list(frame.loc[bad[:5], date_col])}"
        )
    first = pd.Series(dates.to_numpy(), index=out["group"].to_numpy()).groupby(level=0).min()
    if cutoff is None:
        if not 0.0 < test_size < 1.0:
            raise ConfigError("method 'temporal' needs a cutoff date or a test_size between 0 and 1")
        ordered = first.sort_values(kind="mergesort")
        k = max(1, round(test_size * len(ordered)))
        cut = ordered.iloc[len(ordered) - k]
    else:
        cut = pd.Timestamp(cutoff)
    late = set(first.index[first >= cut])
    if not late or len(late) == len(first):
        raise DataError(f"cutoff {cut.date()} leaves no groups on one side of the temporal split")
    return late


def check_leakage(splits: pd.DataFrame) -> None:
    """Fail loudly when a group is in two parts, or in two folds of the cross-validation.

    Parameters
    ----------
    splits : pandas.DataFrame
        A table with columns ``group``, ``part`` and ``fold`` (as :func:`make_splits` returns).

    Raises
    ------
    LeakageError
        Naming up to ten offending groups and the parts/folds they span.
    """
    missing = [c for c in ("group", "part", "fold") if c not in splits.columns]
    if missing:
        raise DataError(f"splits table lacks column(s) {missing}")
    key = splits["part"].astype(str) + np.where(splits["part"] == "cv", ":" + splits["fold"].astype(str), "")
    spans = pd.DataFrame({"g": splits["group"], "k": key}).groupby("g")["k"].agg(lambda s: sorted(set(s)))
    bad = spans[spans.map(len) > 1]
    if len(bad):
        shown = "; ".join(f"{g!r} in {parts}" for g, parts in list(bad.items())[:10])
        raise LeakageError(f"{len(bad)} group(s) appear in more than one part/fold: {shown}")


def split_summary(splits: pd.DataFrame) -> pd.DataFrame:
    """Class balance per part (and fold): image and group counts and the share of each class.

    Returns
    -------
    pandas.DataFrame
        One row per (part, fold, label) with ``images``, ``groups`` and ``fraction`` (share of that part/fold's
        images).
    """
    g = splits.groupby(["part", "fold", "label"], sort=True)
    tab = pd.DataFrame({"images": g.size(), "groups": g["group"].nunique()}).reset_index()
    tot = tab.groupby(["part", "fold"])["images"].transform("sum")
    tab["fraction"] = tab["images"] / tot
    return tab
