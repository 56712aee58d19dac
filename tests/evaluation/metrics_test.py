"""Tests for echonet_jax.evaluation.metrics against scikit-learn, and for the patient bootstrap."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from echonet_jax.evaluation import metrics


def _binary_data(seed, n=300, decimals=None):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  scores = 1 / (1 + np.exp(-(1.2 * (y - 0.5) + rng.normal(size=n))))
  if decimals is not None:  # many ties
    scores = np.round(scores, decimals)
  return y, scores


def _regression_data(seed, n=300):
  rng = np.random.default_rng(seed)
  y = rng.normal(50, 12, n)
  return y, y + rng.normal(2, 8, n)


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, 1), (2, 2), (3, 0)])
def test_roc_auc_matches_sklearn(seed, decimals):
  y, s = _binary_data(seed, decimals=decimals)
  assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
  w = np.random.default_rng(seed).integers(0, 4, y.size)
  assert metrics.roc_auc(y, s, w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w),
                                                   abs=1e-12)


def test_roc_auc_batched_weights_equal_rows():
  y, s = _binary_data(4, n=50, decimals=1)
  w = np.random.default_rng(0).integers(0, 3, (6, y.size))
  batch = metrics.roc_auc(y, s, w)
  assert batch.shape == (6,)
  np.testing.assert_allclose(batch, [metrics.roc_auc(y, s, row) for row in w], atol=1e-12)


def test_roc_curve_matches_sklearn():
  y, s = _binary_data(5, decimals=2)
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
  y, _ = _binary_data(6)
  const = np.full(y.shape, 0.3)
  assert metrics.roc_auc(y, const) == skm.roc_auc_score(y, const) == 0.5
  assert metrics.f1(y, const, 0.5) == skm.f1_score(y, const >= 0.5, zero_division=0) == 0.0
  assert metrics.f1(y, const, 0.2) == pytest.approx(skm.f1_score(y, const >= 0.2))
  yr, _ = _regression_data(6)
  const = np.full(yr.shape, 40.0)
  assert metrics.r2(yr, const) == pytest.approx(skm.r2_score(yr, const))
  assert metrics.mae(yr, const) == pytest.approx(skm.mean_absolute_error(yr, const))


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 0.73, 1.0, 1.1])
def test_f1_matches_sklearn(threshold):
  y, p = _binary_data(7, decimals=2)
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
  y, p = _binary_data(seed, n=200, decimals=decimals)
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
  y, yhat = _regression_data(seed)
  assert metrics.r2(y, yhat) == pytest.approx(skm.r2_score(y, yhat), abs=1e-12)
  assert metrics.mae(y, yhat) == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-12)
  w = np.random.default_rng(seed).integers(0, 4, y.size)
  assert metrics.r2(y, yhat, w) == pytest.approx(skm.r2_score(y, yhat, sample_weight=w), abs=1e-12)
  assert metrics.mae(y, yhat, w) == pytest.approx(
      skm.mean_absolute_error(y, yhat, sample_weight=w), abs=1e-12)


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
  y, _ = _regression_data(13)
  train_mean = 47.5
  expected = skm.mean_absolute_error(y, np.full(y.shape, train_mean))
  assert metrics.mean_baseline_mae(y, train_mean) == pytest.approx(expected)
  # Not the mean of the evaluated split.
  assert metrics.mean_baseline_mae(y, train_mean) != pytest.approx(metrics.mean_baseline_mae(
      y, y.mean()))


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


def _grouped_regression(num_patients, videos_per_patient, seed):
  rng = np.random.default_rng(seed)
  patient_effect = rng.normal(0, 10, num_patients)
  groups = np.repeat(np.arange(num_patients), videos_per_patient)
  y = 50 + np.repeat(patient_effect, videos_per_patient) + rng.normal(0, 3, groups.size)
  return groups, y, y + rng.normal(0, 6, groups.size)


@pytest.mark.parametrize("fn", [metrics.r2, metrics.mae])
def test_bootstrap_ci_contains_estimate_and_narrows_with_n(fn):
  widths = []
  for num_patients in (40, 640):
    groups, y, yhat = _grouped_regression(num_patients, 2, seed=num_patients)
    lo, hi = metrics.bootstrap_ci(fn, groups, y, yhat, n_boot=500, seed=0)
    assert lo < fn(y, yhat) < hi
    widths.append(hi - lo)
  # Width scales like 1/sqrt(n): 16× the patients, about a quarter of the width.
  assert widths[1] < 0.5 * widths[0]


def test_bootstrap_auc_contains_estimate():
  y, s = _binary_data(14, n=400)
  groups = np.arange(y.size) // 2
  lo, hi = metrics.bootstrap_ci(metrics.roc_auc, groups, y, s)
  assert lo < metrics.roc_auc(y, s) < hi


def test_bootstrap_resamples_patients_not_videos():
  groups, y, yhat = _grouped_regression(60, 1, seed=15)
  per_patient = metrics.bootstrap_ci(metrics.r2, groups, y, yhat, n_boot=400, seed=3)
  # Every patient now has 3 identical videos: resampling patients gives exactly the same resamples.
  dup = (np.repeat(groups, 3), np.repeat(y, 3), np.repeat(yhat, 3))
  duplicated = metrics.bootstrap_ci(metrics.r2, *dup, n_boot=400, seed=3)
  np.testing.assert_allclose(duplicated, per_patient, rtol=1e-9)
  # Treating each video as independent would pretend to 3× the data: a narrower interval.
  per_video = metrics.bootstrap_ci(metrics.r2, None, *dup[1:], n_boot=400, seed=3)
  assert per_video[1] - per_video[0] < 0.75 * (per_patient[1] - per_patient[0])


def test_vectorised_bootstrap_equals_the_plain_loop():
  y, s = _binary_data(16, n=120, decimals=1)
  groups = np.arange(y.size) % 45
  vectorised = metrics.bootstrap_values(metrics.roc_auc, groups, y, s, n_boot=50, seed=7)
  looped = metrics.bootstrap_values(lambda a, b: metrics.roc_auc(a, b), groups, y, s, n_boot=50,
                                    seed=7)
  np.testing.assert_allclose(vectorised, looped, atol=1e-12)
  f1_at = functools.partial(metrics.f1, threshold=0.5)
  np.testing.assert_allclose(
      metrics.bootstrap_values(f1_at, groups, y, s, n_boot=50, seed=7),
      metrics.bootstrap_values(lambda a, b: f1_at(a, b), groups, y, s, n_boot=50, seed=7))


def test_bootstrap_skips_undefined_resamples_and_never_reports_a_zero_width_interval():
  # One positive patient: many resamples miss it and have no AUC; every defined one gives AUC 1.0.
  y = np.array([1] + [0] * 19)
  s = np.linspace(1, 0, 20)
  values = metrics.bootstrap_values(metrics.roc_auc, np.arange(20), y, s, n_boot=200)
  assert np.isnan(values).any() and np.isfinite(values).any()
  interval = metrics.bootstrap_interval(metrics.roc_auc, np.arange(20), y, s, n_boot=200)
  assert interval.n_valid == int(np.isfinite(values).sum()) and interval.n_boot == 200
  assert not interval.available and "zero-width" in interval.note
  assert np.isnan(interval.low) and np.isnan(interval.high)
  assert np.isnan(metrics.bootstrap_ci(metrics.roc_auc, np.arange(20), y, s, n_boot=200)).all()
  assert "n_boot=0" in metrics.bootstrap_interval(metrics.roc_auc, None, y, s, n_boot=0).note


def test_bootstrap_interval_is_unavailable_with_few_patients_or_few_defined_resamples():
  # The case: 3 patients give "R² -5.81, 95% CI -5.81 to -5.81" if undefined resamples are
  # dropped silently. Now: n/a, and why.
  y, yhat = np.array([50.0, 60.0, 55.0]), np.array([70.0, 40.0, 62.0])
  few = metrics.bootstrap_interval(metrics.r2, np.arange(3), y, yhat, n_boot=300)
  assert not few.available and "only 3 patients" in few.note and np.isnan(few.low)
  assert 0 < few.n_valid < 300  # resamples of one repeated patient have no R²
  # A metric defined only when two given patients of 12 are both drawn (about 42% of resamples).
  y = np.r_[1.0, 2.0, np.zeros(10)]
  needs_both = lambda a, b: metrics.r2(a, b) if {1.0, 2.0} <= set(a) else np.nan
  sparse = metrics.bootstrap_interval(needs_both, np.arange(12), y, y + 0.1, n_boot=400)
  assert 100 < sparse.n_valid < 200 and "of 400 bootstrap resamples" in sparse.note
  # Enough patients and defined resamples: a real interval around the estimate.
  groups, y, yhat = _grouped_regression(30, 2, seed=4)
  ok = metrics.bootstrap_interval(metrics.r2, groups, y, yhat, n_boot=300)
  assert ok.available and ok.n_valid == 300 and ok.low < metrics.r2(y, yhat) < ok.high


def test_interval_text_uses_true_minus_signs_and_n_a():
  assert metrics.format_interval(-0.3, -0.1) == "\u22120.30 to \u22120.10"
  assert metrics.format_interval(float("nan"), 1.0) == "n/a"
  assert metrics.format_number(None) == "n/a" and metrics.format_number(-5.812) == "\u22125.81"


def test_bootstrap_1000_resamples_is_fast():
  y, s = _binary_data(17, n=500)
  groups = np.arange(y.size) // 2
  yr, yhat = _regression_data(17, n=500)
  start = time.perf_counter()
  metrics.bootstrap_ci(metrics.roc_auc, groups, y, s, n_boot=1000)
  metrics.bootstrap_ci(functools.partial(metrics.f1, threshold=0.5), groups, y, s, n_boot=1000)
  metrics.bootstrap_ci(metrics.r2, groups, yr, yhat, n_boot=1000)
  metrics.bootstrap_ci(metrics.mae, groups, yr, yhat, n_boot=1000)
  assert time.perf_counter() - start < 2.0
