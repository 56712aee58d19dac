"""Tests for echonet_jax.evaluation.bootstrap: patient resampling, honest intervals, their text."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from echonet_jax.evaluation import bootstrap
from echonet_jax.evaluation import metrics
from tests import testing


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
    lo, hi = bootstrap.bootstrap_ci(fn, groups, y, yhat, n_boot=500, seed=0)
    assert lo < fn(y, yhat) < hi
    widths.append(hi - lo)
  # Width scales like 1/sqrt(n): 16× the patients, about a quarter of the width.
  assert widths[1] < 0.5 * widths[0]


def test_bootstrap_auc_contains_estimate():
  y, s = testing.binary_scores(14, n=400)
  groups = np.arange(y.size) // 2
  lo, hi = bootstrap.bootstrap_ci(metrics.roc_auc, groups, y, s)
  assert lo < metrics.roc_auc(y, s) < hi


def test_bootstrap_resamples_patients_not_videos():
  groups, y, yhat = _grouped_regression(60, 1, seed=15)
  per_patient = bootstrap.bootstrap_ci(metrics.r2, groups, y, yhat, n_boot=400, seed=3)
  # Every patient now has 3 identical videos: resampling patients gives exactly the same resamples.
  dup = (np.repeat(groups, 3), np.repeat(y, 3), np.repeat(yhat, 3))
  duplicated = bootstrap.bootstrap_ci(metrics.r2, *dup, n_boot=400, seed=3)
  np.testing.assert_allclose(duplicated, per_patient, rtol=1e-9)
  # Treating each video as independent would pretend to 3× the data: a narrower interval.
  per_video = bootstrap.bootstrap_ci(metrics.r2, None, *dup[1:], n_boot=400, seed=3)
  assert per_video[1] - per_video[0] < 0.75 * (per_patient[1] - per_patient[0])


def test_vectorised_bootstrap_equals_the_plain_loop():
  y, s = testing.binary_scores(16, n=120, decimals=1)
  groups = np.arange(y.size) % 45
  vectorised = bootstrap.bootstrap_values(metrics.roc_auc, groups, y, s, n_boot=50, seed=7)
  looped = bootstrap.bootstrap_values(
      lambda a, b: metrics.roc_auc(a, b), groups, y, s, n_boot=50, seed=7
  )
  np.testing.assert_allclose(vectorised, looped, atol=1e-12)
  f1_at = functools.partial(metrics.f1, threshold=0.5)
  np.testing.assert_allclose(
      bootstrap.bootstrap_values(f1_at, groups, y, s, n_boot=50, seed=7),
      bootstrap.bootstrap_values(lambda a, b: f1_at(a, b), groups, y, s, n_boot=50, seed=7),
  )


def test_bootstrap_skips_undefined_resamples_and_never_reports_a_zero_width_interval():
  # One positive patient: many resamples miss it and have no AUC; every defined one gives AUC 1.0.
  y = np.array([1] + [0] * 19)
  s = np.linspace(1, 0, 20)
  values = bootstrap.bootstrap_values(metrics.roc_auc, np.arange(20), y, s, n_boot=200)
  assert np.isnan(values).any() and np.isfinite(values).any()
  interval = bootstrap.bootstrap_interval(metrics.roc_auc, np.arange(20), y, s, n_boot=200)
  assert interval.n_valid == int(np.isfinite(values).sum()) and interval.n_boot == 200
  assert not interval.available and "zero-width" in interval.note
  assert np.isnan(interval.low) and np.isnan(interval.high)
  assert np.isnan(bootstrap.bootstrap_ci(metrics.roc_auc, np.arange(20), y, s, n_boot=200)).all()
  assert "n_boot=0" in bootstrap.bootstrap_interval(metrics.roc_auc, None, y, s, n_boot=0).note


def test_bootstrap_interval_is_unavailable_with_few_patients_or_few_defined_resamples():
  # The case: 3 patients give "R² -5.81, 95% CI -5.81 to -5.81" if undefined resamples are
  # dropped silently. Now: n/a, and why.
  y, yhat = np.array([50.0, 60.0, 55.0]), np.array([70.0, 40.0, 62.0])
  few = bootstrap.bootstrap_interval(metrics.r2, np.arange(3), y, yhat, n_boot=300)
  assert not few.available and "only 3 patients" in few.note and np.isnan(few.low)
  assert 0 < few.n_valid < 300  # resamples of one repeated patient have no R²
  # A metric defined only when two given patients of 12 are both drawn (about 42% of resamples).
  y = np.r_[1.0, 2.0, np.zeros(10)]
  needs_both = lambda a, b: metrics.r2(a, b) if {1.0, 2.0} <= set(a) else np.nan
  sparse = bootstrap.bootstrap_interval(needs_both, np.arange(12), y, y + 0.1, n_boot=400)
  assert 100 < sparse.n_valid < 200 and "of 400 bootstrap resamples" in sparse.note
  # Enough patients and defined resamples: a real interval around the estimate.
  groups, y, yhat = _grouped_regression(30, 2, seed=4)
  ok = bootstrap.bootstrap_interval(metrics.r2, groups, y, yhat, n_boot=300)
  assert ok.available and ok.n_valid == 300 and ok.low < metrics.r2(y, yhat) < ok.high


def test_interval_text_uses_true_minus_signs_and_n_a():
  assert bootstrap.format_interval(-0.3, -0.1) == "\u22120.30 to \u22120.10"
  assert bootstrap.format_interval(float("nan"), 1.0) == "n/a"
  assert bootstrap.format_number(None) == "n/a" and bootstrap.format_number(-5.812) == "\u22125.81"
