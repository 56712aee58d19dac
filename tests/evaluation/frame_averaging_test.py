"""Tests for echonet_jax.evaluation.frame_averaging: video predictions, metric against frames."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from echonet_jax.evaluation import frame_averaging
from echonet_jax.evaluation import metrics
from tests import testing


def test_video_predictions_mean_first_k_and_nan_frames():
  x = np.array([[1.0, 2.0, 3.0, np.nan], [4.0, np.nan, 6.0, 8.0], [np.nan] * 4])
  np.testing.assert_allclose(frame_averaging.video_predictions(x), [2.0, 6.0, np.nan])
  np.testing.assert_allclose(frame_averaging.video_predictions(x, 2), [1.5, 4.0, np.nan])
  np.testing.assert_allclose(frame_averaging.video_predictions(np.array([0.2, 0.4])), [0.2, 0.4])
  with pytest.raises(ValueError, match="num_frames"):
    frame_averaging.video_predictions(x, 0)


def test_frame_matrix_with_and_without_classes():
  assert frame_averaging.frame_matrix([0.2, 0.4]).shape == (2, 1)
  assert frame_averaging.frame_matrix([[0.2, 0.8]], classes=True).shape == (1, 1, 2)
  assert frame_averaging.frame_matrix(np.zeros((2, 3, 4)), classes=True).dtype == np.float64
  with pytest.raises(ValueError, match=r"frame_outputs must have shape \(videos, frames\)"):
    frame_averaging.frame_matrix(np.zeros((2, 3, 4)))
  with pytest.raises(ValueError, match=r"must be \(videos, frames, classes\); got \(2,\)"):
    frame_averaging.frame_matrix([0.2, 0.4], classes=True)


@pytest.mark.parametrize("order", ["first", "random"])
def test_frames_curve_length_and_end_point(order):
  labels, frames = testing.binary_frame_outputs(frames=10)
  labels[:3] = np.nan
  curve = frame_averaging.frames_curve(
      labels,
      frames,
      metrics.roc_auc,
      np.arange(labels.size) // 2,
      max_frames=10,
      seed=1,
      order=order,
      n_boot=50,
  )
  for key in ("num_frames", "value", "ci_low", "ci_high"):
    assert len(curve[key]) == 10
  np.testing.assert_array_equal(curve["num_frames"], np.arange(1, 11))
  keep = ~np.isnan(labels)
  # With all frames, any order gives the video mean.
  assert curve["value"][-1] == pytest.approx(
      skm.roc_auc_score(labels[keep], frames[keep].mean(axis=1))
  )
  if order == "first":
    assert curve["value"][0] == pytest.approx(skm.roc_auc_score(labels[keep], frames[keep, 0]))
  assert np.all(curve["ci_low"] <= curve["value"]) and np.all(curve["value"] <= curve["ci_high"])
  # Averaging frames with independent noise helps.
  assert curve["value"][-1] > curve["value"][0]


def test_frames_curve_rejects_more_frames_than_given():
  labels, frames = testing.regression_frame_outputs(frames=4)
  with pytest.raises(ValueError, match="max_frames"):
    frame_averaging.frames_curve(labels, frames, metrics.r2, None, max_frames=5)
  with pytest.raises(ValueError, match="order"):
    frame_averaging.frames_curve(labels, frames, metrics.r2, None, max_frames=2, order="last")
