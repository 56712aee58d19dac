"""Tests of echonet_jax.phantom.render: labels vs rendered geometry, pixels, masks, the sector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from echonet_jax import phantom
from echonet_jax.phantom import render
from tests import testing

_bit = testing.phantom_bit  # the bit of a region in the phantom's masks


def _area_length_volume(mask: np.ndarray) -> float:
  """Area-length volume 8 A^2 / (3 pi L) of one 2-D cavity mask (pixel units)."""
  ys, xs = np.nonzero(mask)
  pts = np.stack([xs, ys], 1).astype(float)
  pts -= pts.mean(0)
  _, vecs = np.linalg.eigh(pts.T @ pts)
  proj = pts @ vecs[:, -1]
  length = proj.max() - proj.min() + 1.0
  return 8.0 * len(xs) ** 2 / (3.0 * math.pi * length)


@pytest.fixture(scope="module")
def studies():
  """Thirty A4C studies at 240x320, 20 fps, 2.2 s."""
  out = []
  for i in range(30):
    rng = np.random.default_rng([7, i])
    patient = phantom.sample_patient(rng)
    video = phantom.render_study(patient, rng, "A4C", 240, 320, 44, 50.0)
    out.append((patient, video))
  return out


def _r2(y, pred):
  y, pred = np.asarray(y), np.asarray(pred)
  return 1.0 - np.mean((y - pred) ** 2) / np.var(y)


def test_ef_from_rendered_lv_cavity_tracks_label(studies):
  ef_geom, ef_label, ef_true = [], [], []
  for patient, video in studies:
    vols = [_area_length_volume(m & _bit("lv")) for m in video.masks]
    ef_geom.append(100.0 * (max(vols) - min(vols)) / max(vols))
    ef_label.append(patient["labels"]["ef"])
    ef_true.append(patient["truth"]["ef"])
  # The written label carries measurement noise (SD 2.5 EF points); the test compares with it.
  assert _r2(ef_label, ef_geom) >= 0.9
  assert _r2(ef_true, ef_geom) >= 0.95
  assert np.std(ef_label) > 8.0  # a real spread of EFs, not a degenerate sample


def test_causal_signals_are_in_the_pixels(studies):
  near, weight = [], []
  for patient, video in studies:
    nf = (video.masks[0] & _bit("near_field")) > 0
    near.append(nf.sum(0).max())  # thickest column of the chest-wall band, pixels
    weight.append(patient["labels"]["weight"])
    lead = (video.masks & _bit("lead")) > 0
    assert lead.any() == patient["truth"]["lead_visible"]
    if lead.any():  # the lead is a bright line
      assert (
          video.frames[lead].mean()
          > 2.0 * video.frames[video.sector[None].repeat(len(lead), 0)].mean()
      )
  assert np.corrcoef(near, weight)[0, 1] > 0.6


def test_lead_drawn_from_ra_into_rv():
  rng = np.random.default_rng(3)
  while True:
    patient = phantom.sample_patient(rng)
    if patient["truth"]["lead_visible"]:
      break
  video = phantom.render_study(patient, rng, "A4C", 240, 320, 10, 50.0)
  lead = (video.masks & _bit("lead")) > 0
  for chamber in ("rv", "ra"):
    assert (lead & ((video.masks & _bit(chamber)) > 0)).any(), chamber
  myo = (video.masks & _bit("myocardium")) > 0
  assert video.frames[lead].mean() > 1.5 * video.frames[myo].mean()


def test_masks_and_frames_respect_the_sector(studies):
  _, video = studies[0]
  assert video.masks.dtype == np.uint16 and video.frames.dtype == np.uint8
  assert video.masks.shape == video.frames.shape == (44, 240, 320)
  assert video.masks.max() < (1 << len(phantom.MASK_NAMES))
  assert not (video.masks[:, ~video.sector]).any()
  outside = video.frames[:, ~video.sector & ~video.overlay]
  assert not outside.any()
  assert video.text.any() and not (video.text & video.sector).any()
  for name in ("lv", "la", "rv", "ra", "myocardium", "valves", "near_field"):
    assert ((video.masks & _bit(name)) > 0).any(axis=(1, 2)).all(), name
  lv = (video.masks & _bit("lv")) > 0
  assert not (lv & ((video.masks & _bit("near_field")) > 0)).any()
  # Blood is dark, myocardium brighter.
  myo = (video.masks & _bit("myocardium")) > 0
  assert video.frames[myo].mean() > 2.0 * video.frames[lv].mean()


def test_views_and_bad_inputs():
  rng = np.random.default_rng(0)
  patient = phantom.sample_patient(rng)
  for view in ("A2C", "PLAX"):
    frames, masks = phantom.render_video(patient, np.random.default_rng(1), view, 96, 128, 4, 50.0)
    assert frames.shape == masks.shape == (4, 96, 128)
    assert ((masks & _bit("lv")) > 0).any() and not ((masks & _bit("ra")) > 0).any()
  with pytest.raises(ValueError, match="A7C"):
    phantom.render_video(patient, rng, "A7C")
  with pytest.raises(ValueError, match="kind"):
    phantom.render_video(patient, rng, "A4C", kind="subcostal")
  with pytest.raises(ValueError, match="rows"):
    render.render_study(patient, rng, "A4C", 10, 10)
