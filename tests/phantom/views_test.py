"""Tests of echonet_jax.phantom.views: the view classes' masks, geometry and separability."""

from __future__ import annotations

import math

import numpy as np
import pytest

from echonet_jax import phantom
from tests import testing

_bit = testing.phantom_bit  # the bit of a region in the phantom's masks


def _mask(video, name, frame=None):
  bits = video.masks if frame is None else video.masks[frame]
  return (bits & _bit(name)) > 0


def _shape(mask: np.ndarray):
  """(centroid (x, y), long/short principal-axis ratio, long axis's angle from vertical, deg)."""
  ys, xs = np.nonzero(mask)
  pts = np.stack([xs, ys], 1).astype(float)
  centre = pts.mean(0)
  vals, vecs = np.linalg.eigh(np.cov((pts - centre).T))
  angle = math.degrees(math.atan2(abs(vecs[0, 1]), abs(vecs[1, 1])))
  return centre, math.sqrt(vals[1] / vals[0]), angle


_PRESENT = {  # structures in every frame of a view (masks of absent ones must be empty)
    "A3C": ("lv", "la", "myocardium", "valves"),
    "A5C": ("lv", "la", "rv", "ra", "myocardium", "valves"),
    "PSAX": ("lv", "rv", "myocardium"),
    "foreshortened": ("lv", "la", "myocardium", "valves"),
    "off_axis": ("lv", "myocardium"),
    "subcostal": ("lv", "la", "rv", "ra", "myocardium", "valves"),
    "oblique_psax": ("lv", "rv", "myocardium"),
}


_ABSENT = {"A3C": ("rv", "ra"), "PSAX": ("la", "ra"), "oblique_psax": ("la", "ra")}


_REGIONS = ("lv", "la", "rv", "ra", "myocardium", "near_field")  # exclusive label-map classes


@pytest.mark.parametrize(
    "view,kind",
    [("A3C", None), ("A5C", None), ("PSAX", None)] + [("other", k) for k in phantom.OTHER_KINDS],
)
def test_new_views_render_with_consistent_masks(view, kind):
  assert phantom.VIEW_CLASSES == phantom.VIEWS + ("other",)
  patient = phantom.sample_patient(np.random.default_rng([13, 0]))
  video = phantom.render_study(
      patient, np.random.default_rng([13, 1]), view, 120, 160, 8, 100.0, kind=kind
  )
  assert (video.view, video.kind) == (view, kind or "")
  assert video.frames.shape == video.masks.shape == (8, 120, 160)
  assert not video.masks[:, ~video.sector].any()
  assert not video.frames[:, ~video.sector & ~video.overlay].any()
  for name in _PRESENT[kind or view]:
    assert _mask(video, name).any(axis=(1, 2)).all(), name
  for name in _ABSENT.get(kind or view, ()):
    assert not _mask(video, name).any(), name
  for k, a in enumerate(_REGIONS):
    for b in _REGIONS[k + 1 :]:
      assert not (_mask(video, a) & _mask(video, b)).any(), (a, b)
  assert (
      video.frames[_mask(video, "myocardium")].mean()
      > 1.5 * video.frames[_mask(video, "lv")].mean()
  )  # blood dark, muscle bright
  if kind != "off_axis":  # (off-axis LVs run off the fan's edge)
    lv_area = _mask(video, "lv").sum(axis=(1, 2))
    assert np.corrcoef(lv_area, video.lv_volume)[0, 1] > 0.8  # the cavity follows the LV volume
  again = phantom.render_study(
      patient, np.random.default_rng([13, 1]), view, 120, 160, 8, 100.0, kind=kind
  )
  np.testing.assert_array_equal(again.frames, video.frames)
  np.testing.assert_array_equal(again.masks, video.masks)
  other = phantom.render_study(
      patient, np.random.default_rng([13, 2]), view, 120, 160, 8, 100.0, kind=kind
  )
  assert not np.array_equal(other.frames, video.frames)


def _solidity(mask: np.ndarray) -> float:
  import cv2  # pylint: disable=g-import-not-at-top

  ys, xs = np.nonzero(mask)
  hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
  return mask.sum() / max(1.0, cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psax_and_the_other_kinds_have_their_geometry(seed):
  """PSAX: round LV, RV crescent above; ``other``: foreshortened (rounder LV), off-axis (tilted),
  subcostal (LV lying sideways below the liver, RV on top), oblique PSAX (oval LV)."""
  patient = phantom.sample_patient(np.random.default_rng([seed, 0]))
  shapes = {}
  for view, kind in [("A4C", None), ("A2C", None), ("PSAX", None)] + [
      ("other", k) for k in phantom.OTHER_KINDS
  ]:
    video = phantom.render_study(
        patient, np.random.default_rng([seed, 1]), view, 120, 160, 4, 100.0, kind=kind
    )
    ed = int(np.argmax(video.lv_volume))
    shapes[kind or view] = (video, ed) + _shape(_mask(video, "lv", ed))
  psax, ed, lv_centre, ratio, _ = shapes["PSAX"]
  rv = _mask(psax, "rv", ed)
  assert ratio < 1.15 and _shape(rv)[0][1] < lv_centre[1] - 5  # round LV, RV above it
  assert _solidity(rv) < 0.7  # a crescent, not a blob
  assert shapes["oblique_psax"][3] > 1.3
  assert shapes["foreshortened"][3] < 0.85 * min(shapes["A4C"][3], shapes["A2C"][3])
  assert 20.0 < shapes["off_axis"][4] < 70.0
  assert max(shapes["A4C"][4], shapes["A2C"][4]) < 20.0
  sub, ed, lv_centre, _, angle = shapes["subcostal"]
  assert angle > 55.0 and _shape(_mask(sub, "rv", ed))[0][1] < lv_centre[1]
  heart_top = np.nonzero(_mask(sub, "rv", ed) | _mask(sub, "ra", ed))[0].min()
  wall_bottom = np.nonzero(_mask(sub, "near_field", ed))[0].max()
  assert heart_top - wall_bottom > 30.0 * sub.geometry["px_per_mm"]  # the liver window between


def test_views_are_distinguishable_but_not_trivially():
  """Class-mean frames differ and a nearest-mean classifier beats chance, but brightness alone
  separates no class and the nearest-mean classifier is far from perfect."""
  import cv2  # pylint: disable=g-import-not-at-top

  num_classes = len(phantom.VIEW_CLASSES)
  feats, labels, brightness = [], [], []
  for i in range(8):
    patient = phantom.sample_patient(np.random.default_rng([21, i]))
    for c, view in enumerate(phantom.VIEW_CLASSES):
      video = phantom.render_study(
          patient, np.random.default_rng([21, i, c + 1]), view, 120, 160, 4, 100.0
      )
      mean = (video.frames.mean(0) * video.sector).astype(np.float32)
      small = cv2.resize(mean, (16, 12), interpolation=cv2.INTER_AREA).ravel()
      feats.append(small / small.mean())
      labels.append(c)
      brightness.append(video.frames[:, video.sector].mean())
  x, y, brightness = np.array(feats), np.array(labels), np.array(brightness)
  centroids = np.stack([x[y == c].mean(0) for c in range(num_classes)])
  gaps = np.abs(centroids[:, None] - centroids[None]).mean(-1)
  assert gaps[~np.eye(num_classes, dtype=bool)].min() > 0.05, gaps
  correct = 0
  for j in range(len(y)):  # leave-one-out nearest class mean
    keep = np.arange(len(y)) != j
    means = np.stack([x[keep & (y == c)].mean(0) for c in range(num_classes)])
    correct += int(np.argmin(((means - x[j]) ** 2).sum(1)) == y[j])
  assert 2.0 / num_classes < correct / len(y) < 0.9, correct / len(y)
  lo = np.array([brightness[y == c].min() for c in range(num_classes)])
  hi = np.array([brightness[y == c].max() for c in range(num_classes)])
  for c in range(num_classes):  # every class's brightness range overlaps another class's
    others = np.arange(num_classes) != c
    assert ((lo[others] < hi[c]) & (hi[others] > lo[c])).any(), phantom.VIEW_CLASSES[c]
