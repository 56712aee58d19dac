"""Tests of echonet_jax.phantom.patients: the label model, its documented explainable variance."""

from __future__ import annotations

import numpy as np

from echonet_jax import phantom
from echonet_jax import tasks
from echonet_jax.phantom import patients


def test_label_model():
  rng = np.random.default_rng(0)
  draws = [phantom.sample_patient(rng) for _ in range(3000)]
  lab = {k: np.array([d["labels"][k] for d in draws]) for k in tasks.TASK_NAMES}
  assert set(draws[0]["labels"]) == set(tasks.TASK_NAMES)
  assert 10 <= lab["ef"].min() and lab["ef"].max() <= 85 and 45 < lab["ef"].mean() < 60
  np.testing.assert_allclose(lab["esv"], lab["edv"] * (1 - lab["ef"] / 100), atol=0.3)
  assert 0.07 < lab["pacemaker_leads"].mean() < 0.14
  for name in ("severe_lae", "lvh"):
    assert 0.03 < lab[name].mean() < 0.3, name
  assert 0.45 < lab["sex"].mean() < 0.65
  assert 18 <= lab["age"].min() and lab["age"].max() <= 92
  assert 1.4 < lab["height"].mean() < 1.9 and 60 < lab["weight"].mean() < 95
  assert np.corrcoef(lab["height"], lab["weight"])[0, 1] > 0.3
  assert np.corrcoef(lab["height"], lab["sex"])[0, 1] > 0.5
  assert np.corrcoef(lab["ef"], lab["edv"])[0, 1] < -0.4  # dilated LVs pump less
  assert set(draws[0]["identity"]) >= {"patient_name", "patient_id", "birth_date", "study_date"}


def test_explainable_variance_is_documented_correctly():
  est = patients.estimate_explainable_variance(num=6000, seed=1)
  assert set(est) == set(tasks.TASK_NAMES) == set(phantom.EXPLAINABLE_VARIANCE)
  for name, values in phantom.EXPLAINABLE_VARIANCE.items():
    for key, documented in values.items():
      assert abs(est[name][key] - documented) < 0.08, (name, key, est[name][key], documented)
    assert values["r2"] < 0.99  # no task is trivially perfect
