"""Tests for echonet_jax.evaluation.plots: legends off the data, readable CI text, n/a intervals."""

from __future__ import annotations

import numpy as np

from echonet_jax.evaluation import frame_averaging
from echonet_jax.evaluation import plots
from echonet_jax.evaluation import task_metrics
from echonet_jax.tasks import get_task


def _overlaps(fig, artist, ax) -> bool:
  renderer = fig.canvas.get_renderer()
  a = artist.get_window_extent(renderer)
  b = ax.get_window_extent(renderer)
  return a.overlaps(b)


def _regression(n=60, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.normal(60, 20, n)
  return labels, labels[:, None] + rng.normal(0, 8, (n, 1)) + rng.normal(0, 15, (n, 6))


def test_legends_sit_below_the_axes_not_on_the_data(tmp_path):
  labels, frames = _regression()
  task = get_task("ef")
  preds = frame_averaging.video_predictions(frames)
  report = task_metrics.task_metrics(
      task, labels, preds, np.arange(labels.size) // 2, train_mean=55.0, n_boot=50
  )
  curve = frame_averaging.frames_curve(
      labels,
      frames,
      task_metrics.headline_metric(task)[1],
      np.arange(labels.size) // 2,
      max_frames=6,
      n_boot=20,
  )
  figures = [
      plots.scatter(str(tmp_path / "s.png"), task, "test", labels, preds, report),
      plots.bland_altman(str(tmp_path / "b.png"), task, "test", labels, preds, report),
      plots.frames(str(tmp_path / "f.png"), task, "test", curve, "r2", "first"),
  ]
  binary = np.r_[np.ones(30), np.zeros(30)]
  probs = np.clip(0.3 * binary + np.random.default_rng(1).random(60) * 0.7, 0, 1)
  lvh = get_task("lvh")
  figures.append(
      plots.roc(
          str(tmp_path / "r.png"),
          lvh,
          "test",
          binary,
          probs,
          task_metrics.task_metrics(lvh, binary, probs, np.arange(60), n_boot=50),
      )
  )
  for fig in figures:
    (ax,) = fig.axes
    assert ax.get_legend() is None  # no legend inside the axes
    (legend,) = fig.legends
    assert not _overlaps(fig, legend, ax), fig
    texts = [t.get_text() for t in legend.get_texts()]
    assert not any("--" in t for t in texts), texts


def test_ci_text_reads_a_to_b_with_true_minus_signs_or_n_a():
  row = {"value": -0.2, "ci_low": -0.31, "ci_high": -0.1}
  assert plots.ci_text(row) == "\u22120.20 (95% CI \u22120.31 to \u22120.10)"
  assert plots.ci_text({"value": -5.81, "ci_low": None, "ci_high": None}) == (
      "\u22125.81 (95% CI n/a)"
  )


def test_frames_plot_with_no_interval_draws_no_band(tmp_path):
  curve = {
      "num_frames": [1, 2, 3],
      "value": [0.1, 0.2, 0.3],
      "ci_low": [None] * 3,
      "ci_high": [None] * 3,
  }
  fig = plots.frames(str(tmp_path / "f.png"), get_task("ef"), "test", curve, "r2", "first")
  (ax,) = fig.axes
  assert not ax.collections  # no fill_between band from a missing interval
  assert any("95% CI n/a at 3 of 3" in t.get_text() for t in fig.legends[0].get_texts())
