"""Multi-class metrics against scikit-learn and the undefined-class policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from nodescope.evaluation import multiclass_metrics, roc_auc

CLASSES = ["benign", "lymphoma", "metastatic"]


@pytest.fixture
def three_class(rng):
    n, k = 240, 3
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, p


def test_matches_sklearn(three_class):
    y, p = three_class
    m = multiclass_metrics(y, p, classes=CLASSES, n_boot=200)
    pred = p.argmax(axis=1)
    assert m.macro_auc.estimate == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert m.micro_auc.estimate == pytest.approx(skm.roc_auc_score(np.eye(3)[y], p, average="micro"))
    assert m.macro_f1.estimate == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m.mcc.estimate == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m.kappa.estimate == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert m.accuracy.estimate == pytest.approx(skm.accuracy_score(y, pred))
    np.testing.assert_array_equal(m.confusion.to_numpy(), skm.confusion_matrix(y, pred))
    np.testing.assert_allclose(m.confusion_normalized.to_numpy().sum(axis=1), 1.0)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, pred)
    np.testing.assert_array_equal(m.per_class["support"], sup)
    np.testing.assert_allclose(m.per_class["precision"], prec)
    np.testing.assert_allclose(m.per_class["recall"], rec)
    np.testing.assert_allclose(m.per_class["f1"], f1)
    for j, c in enumerate(CLASSES):
        ovr = roc_auc(y == j, p[:, j])
        assert m.auc_per_class[j].name == f"auc_{c}"
        assert m.auc_per_class[j].ci_low == pytest.approx(ovr.ci_low)
    for e in (m.macro_auc, m.micro_auc, m.macro_f1, m.mcc, m.kappa):
        assert e.ci_low <= e.estimate <= e.ci_high, e.name


def test_string_labels_equal_integer_labels(three_class):
    y, p = three_class
    a = multiclass_metrics(y, p, classes=CLASSES, n_boot=50)
    b = multiclass_metrics(np.array(CLASSES)[y], p, classes=CLASSES, n_boot=50)
    assert a.summary_frame().equals(b.summary_frame())


def test_absent_class_auc_undefined(three_class):
    y, p = three_class
    y = np.where(y == 2, 0, y)
    m = multiclass_metrics(y, p, classes=CLASSES, n_boot=50)
    assert math.isnan(m.auc_per_class[2].estimate)
    assert math.isnan(m.macro_auc.estimate) and "metastatic" in m.macro_auc.note
    assert math.isnan(m.per_class.loc[2, "recall"])


@pytest.mark.parametrize(
    ("y", "prob", "kwargs", "msg"),
    [
        (["a", "x"], [[0.5, 0.5], [0.5, 0.5]], {"classes": ["a", "b"]}, "not in classes"),
        ([0, 3], [[0.5, 0.5], [0.5, 0.5]], {}, r"in 0\.\.1"),
        ([0, 1], [0.5, 0.5], {}, r"shape \(N, K\)"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], {"classes": ["a"]}, "1 names"),
    ],
)
def test_bad_inputs(y, prob, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        multiclass_metrics(np.array(y), np.array(prob), **kwargs)
