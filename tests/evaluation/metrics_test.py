"""Tests for echonet_jax.evaluation.metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from echonet_jax.evaluation import metrics
from tests import testing


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, 1), (2, 2), (3, 0)])
def test_roc_auc_matches_sklearn(seed, decimals):
  y, s = testing.binary_scores(seed, decimals=decimals)
  assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
  w = np.random.default_rng(seed).integers(0, 4, y.size)
  assert metrics.roc_auc(y, s, w) == pytest.approx(
      skm.roc_auc_score(y, s, sample_weight=w), abs=1e-12
  )


def test_roc_auc_batched_weights_equal_rows():
  y, s = testing.binary_scores(4, n=50, decimals=1)
  w = np.random.default_rng(0).integers(0, 3, (6, y.size))
  batch = metrics.roc_auc(y, s, w)
  assert batch.shape == (6,)
  np.testing.assert_allclose(batch, [metrics.roc_auc(y, s, row) for row in w], atol=1e-12)


def test_roc_curve_matches_sklearn():
  y, s = testing.binary_scores(5, decimals=2)
  fpr, tpr, thresholds = metrics.roc_curve(y, s)
  sk_fpr, sk_tpr, sk_thresholds = skm.roc_curve(y, s, drop_intermediate=False)
  np.testing.assert_allclose(fpr, sk_fpr)
  np.testing.assert_allclose(tpr, sk_tpr)
  np.testing.assert_array_equal(thresholds, sk_thresholds)
  assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(y, s))


@pytest.mark.parametrize("labels", [np.ones(20), np.zeros(20)])
def test_roc_auc_one_class_is_nan_with_reason(labels):
  s = np.linspace(0, 1, 20)
  with pytest.warns(UndefinedMetricWarning):  # scikit-learn >= 1.6: NaN + warning
    assert np.isnan(skm.roc_auc_score(labels, s))
  assert np.isnan(metrics.roc_auc(labels, s))
  reason = metrics.auc_undefined_reason(labels)
  assert reason == f"all 20 labels are {'positive' if labels[0] else 'negative'}"
  assert metrics.auc_undefined_reason([0, 1, 1]) is None


def test_constant_predictions_match_sklearn():
  y, _ = testing.binary_scores(6)
  const = np.full(y.shape, 0.3)
  assert metrics.roc_auc(y, const) == skm.roc_auc_score(y, const) == 0.5
  assert metrics.f1(y, const, 0.5) == skm.f1_score(y, const >= 0.5, zero_division=0) == 0.0
  assert metrics.f1(y, const, 0.2) == pytest.approx(skm.f1_score(y, const >= 0.2))
  yr, _ = testing.regression_outputs(6)
  const = np.full(yr.shape, 40.0)
  assert metrics.r2(yr, const) == pytest.approx(skm.r2_score(yr, const))
  assert metrics.mae(yr, const) == pytest.approx(skm.mean_absolute_error(yr, const))


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 0.73, 1.0, 1.1])
def test_f1_matches_sklearn(threshold):
  y, p = testing.binary_scores(7, decimals=2)
  expected = skm.f1_score(y, p >= threshold, zero_division=0)
  assert metrics.f1(y, p, threshold) == pytest.approx(expected, abs=1e-12)
  w = np.random.default_rng(1).integers(0, 3, y.size)
  expected = skm.f1_score(y, p >= threshold, sample_weight=w, zero_division=0)
  assert metrics.f1(y, p, threshold, w) == pytest.approx(expected, abs=1e-12)


def test_f1_no_positives_anywhere_is_zero_like_sklearn():
  y = np.zeros(10)
  p = np.full(10, 0.1)
  assert metrics.f1(y, p, 0.5) == skm.f1_score(y, p >= 0.5, zero_division=0) == 0.0


@pytest.mark.parametrize("seed,decimals", [(8, None), (9, 1), (10, 2)])
def test_best_f1_threshold_is_the_best_cut(seed, decimals):
  y, p = testing.binary_scores(seed, n=200, decimals=decimals)
  threshold, best = metrics.best_f1_threshold(y, p)
  brute = max(skm.f1_score(y, p >= t) for t in np.unique(p))
  assert best == pytest.approx(brute)
  assert skm.f1_score(y, p >= threshold) == pytest.approx(best)
  assert metrics.f1(y, p, threshold) == pytest.approx(best)
  # The threshold lies halfway between observed scores, not on the lowest positive-predicted one.
  below, above = p[p < threshold], p[p >= threshold]
  assert below.size and threshold == pytest.approx(0.5 * (below.max() + above.min()))


def test_best_f1_threshold_without_positives_is_nan():
  threshold, best = metrics.best_f1_threshold(np.zeros(5), np.linspace(0, 1, 5))
  assert np.isnan(threshold) and np.isnan(best)


@pytest.mark.parametrize("seed", [11, 12])
def test_r2_mae_match_sklearn(seed):
  y, yhat = testing.regression_outputs(seed)
  assert metrics.r2(y, yhat) == pytest.approx(skm.r2_score(y, yhat), abs=1e-12)
  assert metrics.mae(y, yhat) == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-12)
  w = np.random.default_rng(seed).integers(0, 4, y.size)
  assert metrics.r2(y, yhat, w) == pytest.approx(skm.r2_score(y, yhat, sample_weight=w), abs=1e-12)
  assert metrics.mae(y, yhat, w) == pytest.approx(
      skm.mean_absolute_error(y, yhat, sample_weight=w), abs=1e-12
  )


def test_r2_constant_labels_is_nan_with_reason():
  y = np.full(10, 55.0)
  yhat = np.linspace(50, 60, 10)
  # scikit-learn's force_finite=False gives -inf here; we call it undefined.
  with np.errstate(divide="ignore"):
    assert skm.r2_score(y, yhat, force_finite=False) == -np.inf
  assert np.isnan(metrics.r2(y, yhat))
  assert metrics.r2_undefined_reason(y) == "all 10 labels equal 55"
  assert metrics.r2_undefined_reason([1.0, 2.0]) is None


def test_mean_baseline_mae_uses_the_training_mean():
  y, _ = testing.regression_outputs(13)
  train_mean = 47.5
  expected = skm.mean_absolute_error(y, np.full(y.shape, train_mean))
  assert metrics.mean_baseline_mae(y, train_mean) == pytest.approx(expected)
  # Not the mean of the evaluated split.
  assert metrics.mean_baseline_mae(y, train_mean) != pytest.approx(
      metrics.mean_baseline_mae(y, y.mean())
  )


def test_drop_missing_labels_counts_and_aligns():
  labels = np.array([1.0, np.nan, 0.0, np.nan, 1.0])
  scores = np.array([0.9, 0.5, 0.2, 0.4, 0.7])
  ids = np.array(["a", "b", "c", "d", "e"])
  kept, (kept_scores, kept_ids), n_dropped = metrics.drop_missing_labels(labels, scores, ids)
  assert n_dropped == 2
  np.testing.assert_array_equal(kept, [1, 0, 1])
  np.testing.assert_array_equal(kept_scores, [0.9, 0.2, 0.7])
  np.testing.assert_array_equal(kept_ids, ["a", "c", "e"])
  assert metrics.roc_auc(kept, kept_scores) == skm.roc_auc_score(kept, kept_scores)


def test_bad_inputs_raise_clear_errors():
  with pytest.raises(ValueError, match="NaN"):
    metrics.roc_auc([1, np.nan, 0], [0.1, 0.2, 0.3])
  with pytest.raises(ValueError, match="0 or 1"):
    metrics.roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
  with pytest.raises(ValueError, match="shape"):
    metrics.r2([1.0, 2.0, 3.0], [1.0, 2.0])
  with pytest.raises(ValueError, match="not aligned"):
    metrics.drop_missing_labels([1.0, 2.0], [1.0])
