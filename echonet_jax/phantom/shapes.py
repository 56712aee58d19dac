"""The building blocks of the phantom's anatomy: label classes, scenes, the cardiac cycle, shapes.

A :class:`Scene` holds filled regions, lines and discs; every coordinate array has a leading frame
axis (F, n, 2) in millimetres of a "heart" frame (x lateral, y along the beam, away from the probe),
which the renderer maps to pixels with one affine transform. anatomy.py and short_axis.py build the
scene of each view from the shapes here.

The LV cavity (:func:`lv`) is built so that the area-length volume ``8 A^2 / (3 pi L)`` of the drawn
cavity equals the patient's LV volume at every frame.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

# Label-map classes (drawing order matters; see render.py for their intensities and mask bits).
FAN, MYOCARDIUM, HEART, LV, RV, LA, RA, NEAR_FIELD, PERICARDIUM, VESSEL, LIVER = range(1, 12)


@dataclasses.dataclass
class Scene:
  """Shapes of one video; coordinates in mm, arrays (F, n, 2)."""

  regions: list[tuple[int, np.ndarray]] = dataclasses.field(default_factory=list)
  # (polyline (F, n, 2), thickness mm, intensity 0-255, mask name or None, closed)
  lines: list[tuple[np.ndarray, float, float, str | None]] = dataclasses.field(default_factory=list)
  # (centres (F, 2), radius mm, intensity, mask name or None)
  discs: list[tuple[np.ndarray, float, float, str | None]] = dataclasses.field(default_factory=list)
  # (polyline (F, n, 2), thickness mm) drawn as PERICARDIUM class into the label map.
  pericardium: list[tuple[np.ndarray, float]] = dataclasses.field(default_factory=list)
  hull: bool = True  # fill the convex hull of ``periph`` with HEART tissue first.
  periph: np.ndarray | None = None  # (F, n, 2) points whose hull is the heart


def _smooth_knots(phase: np.ndarray, knots: list[float], values: list[float]) -> np.ndarray:
  """Cosine-eased piecewise interpolation (flat at every knot) of a periodic waveform."""
  phase = np.mod(phase, 1.0)
  k = np.clip(np.searchsorted(knots, phase, side="right") - 1, 0, len(knots) - 2)
  k0, k1 = np.asarray(knots)[k], np.asarray(knots)[k + 1]
  v0, v1 = np.asarray(values)[k], np.asarray(values)[k + 1]
  u = (phase - k0) / (k1 - k0)
  return v0 + (v1 - v0) * 0.5 * (1.0 - np.cos(math.pi * u))


def lv_volume_fraction(phase: np.ndarray) -> np.ndarray:
  """LV volume between ESV (0) and EDV (1) over the cycle; phase 0 = end-diastole (ECG R wave)."""
  return _smooth_knots(phase, [0.0, 0.35, 0.42, 0.62, 0.85, 1.0], [1.0, 0.0, 0.0, 0.8, 0.85, 1.0])


def lv_volumes(truth: dict[str, Any], fraction: np.ndarray) -> np.ndarray:
  """LV volumes (mL) of ``truth`` at :func:`lv_volume_fraction` values ``fraction``."""
  return truth["esv"] + (truth["edv"] - truth["esv"]) * fraction


def av_valve_opening(phase: np.ndarray) -> np.ndarray:
  """Mitral/tricuspid opening 0..1: closed in systole, E and A waves in diastole."""
  return _smooth_knots(
      phase,
      [0.0, 0.38, 0.47, 0.62, 0.82, 0.9, 0.98, 1.0],
      [0.0, 0.0, 1.0, 0.45, 0.45, 0.9, 0.0, 0.0],
  )


def lv_half_width(s: np.ndarray) -> np.ndarray:
  """Unit LV half-width profile, s = 0 at the apex, 1 at the mitral annulus."""
  s0 = 0.55
  h = np.where(s < s0, np.sqrt(np.clip(1.0 - (1.0 - s / s0) ** 2, 0.0, 1.0)), 1.0)
  taper = np.clip((s - 0.75) / 0.25, 0.0, 1.0)
  return 0.5 * h * (1.0 - 0.15 * taper * taper * (3 - 2 * taper))


_S = np.concatenate([[0.0], np.geomspace(0.004, 1.0, 30)])
_UNIT_AREA = 2.0 * float(
    np.sum(0.5 * (lv_half_width(_S[1:]) + lv_half_width(_S[:-1])) * np.diff(_S))
)


def ellipse(
    center: np.ndarray,
    ax: np.ndarray,
    ay: np.ndarray,
    n: int = 40,
    t0: float = 0.0,
    t1: float = 2 * math.pi,
    wobble=(0.0, 0.0, 0.0),
) -> np.ndarray:
  """Ellipse (or arc) points; ``wobble`` = (amplitude, phase2, phase3) of a 2nd/3rd harmonic."""
  t = np.linspace(t0, t1, n, endpoint=(t1 - t0) < 2 * math.pi - 1e-6)
  amp, p2, p3 = wobble
  r = 1.0 + amp * (np.cos(2 * t + p2) + 0.6 * np.cos(3 * t + p3))
  return np.stack(
      [
          center[:, None, 0] + ax[:, None] * r * np.cos(t),
          center[:, None, 1] + ay[:, None] * r * np.sin(t),
      ],
      axis=-1,
  )


def offset(curve: np.ndarray, dist: np.ndarray, side: float) -> np.ndarray:
  """Offsets an open curve (F, n, 2) by ``dist`` (F,) along its normal (side +1 = right of travel)."""
  tangent = np.gradient(curve, axis=1)
  tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True) + 1e-9
  normal = side * np.stack([-tangent[..., 1], tangent[..., 0]], axis=-1)
  return curve + normal * dist[:, None, None]


def segment(p: np.ndarray, length: np.ndarray, angle: np.ndarray) -> np.ndarray:
  """Line segments (F, 2, 2) from points p (F, 2) with lengths and angles (radians, y down)."""
  tip = p + np.stack([np.cos(angle), np.sin(angle)], -1) * length[:, None]
  return np.stack([p, tip], axis=1)


def lv(truth: dict[str, Any], vol: np.ndarray):
  """LV cavity and outer wall for volumes ``vol`` (F,) in mL; returns shapes and sizes."""
  length_ed = 42.0 * truth["edv"] ** 0.15 * truth["lv_length_scale"]
  length = length_ed * (vol / truth["edv"]) ** 0.2
  area = np.sqrt(3.0 * math.pi * length * vol * 1000.0 / 8.0)  # mm^2
  diameter = area / (length * _UNIT_AREA)
  area_ed = math.sqrt(3.0 * math.pi * length_ed * truth["edv"] * 1000.0 / 8.0)
  wall = np.minimum(truth["wall_mm"] * np.sqrt(area_ed / area), 2.0 * truth["wall_mm"])
  hw = lv_half_width(_S)[None] * diameter[:, None]
  y = _S[None] * length[:, None]
  right = np.stack([hw, y], -1)
  left = np.stack([-hw, y], -1)
  cavity = np.concatenate([right, left[:, ::-1][:, 1:-1]], axis=1)
  outer_r = offset(right, wall, -1.0)
  outer_l = offset(left, 1.1 * wall, 1.0)
  outer = np.concatenate([outer_r, outer_l[:, ::-1]], axis=1)
  return dict(
      cavity=cavity,
      outer=outer,
      outer_right=outer_r,
      length=length,
      diameter=diameter,
      base=diameter * float(lv_half_width(np.array([1.0]))[0]) * 2,
      wall=wall,
  )


def lv_cycle(truth: dict[str, Any], phase: np.ndarray):
  """The LV of ``truth`` at each ``phase``: volume fractions (F,), volumes (F,) in mL and
  :func:`lv`'s shapes and sizes."""
  f = lv_volume_fraction(phase)
  vol = lv_volumes(truth, f)
  return f, vol, lv(truth, vol)


def valve_intensity(truth) -> float:
  """Gray level of the valves: brighter with the patient's ``valve_brightness`` (age)."""
  return 110.0 + 145.0 * truth["valve_brightness"]
