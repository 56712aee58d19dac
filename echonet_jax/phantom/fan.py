"""The scan-sector fan of one video in pixels, and what fills it besides the heart.

The fan's geometry and polar grid, sub-pixel (fixed-point) vertices for the cv2 drawing calls, and
the per-video textures: speckle on the polar beam grid, the chest-wall layers, and the liver of a
subcostal window.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from echonet_jax.phantom import shapes

SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices


def geometry(rng: np.random.Generator, rows: int, cols: int, depth_mm: float) -> dict:
  """The fan of one video: apex, radius, near edge r0, half angle (radians), px_per_mm, depth."""
  ax = cols / 2 + rng.normal(0.0, 0.008 * cols)
  ay = rows * rng.uniform(0.055, 0.075)
  radius = 0.80 * rows
  r0 = 0.035 * radius
  max_half = math.asin(min(1.0, (cols / 2 - 0.03 * cols - abs(ax - cols / 2)) / radius))
  half = min(math.radians(rng.uniform(38.0, 44.0)), max_half)
  return dict(
      apex_x=ax,
      apex_y=ay,
      radius=radius,
      r0=r0,
      half_angle=half,
      px_per_mm=(radius - r0) / depth_mm,
      depth_mm=depth_mm,
  )


def polar(geo: dict, rows: int, cols: int, pad: int):
  """Radius and angle from the apex of every pixel, the image padded by ``pad`` on each side."""
  y, x = np.mgrid[-pad : rows + pad, -pad : cols + pad].astype(np.float32)
  dx, dy = x - geo["apex_x"], y - geo["apex_y"]
  return np.hypot(dx, dy), np.arctan2(dx, dy)


def speckle(rng, geo, r, theta, lowfreq_shape):
  """Fully developed speckle drawn on the polar beam grid, scan-converted; mean ~100 (uint8)."""
  radius, s = geo["radius"], geo["px_per_mm"]
  span = geo["half_angle"] + 0.35
  dtheta = 2.0 / radius
  n_t, n_r = int(2 * span / dtheta) + 2, int(radius * 1.15) + 2
  z = rng.standard_normal((n_r, n_t, 2), dtype=np.float32)
  z = cv2.GaussianBlur(z, (0, 0), sigmaX=2.0, sigmaY=max(0.6, 0.5 * s))
  amp = np.sqrt(z[..., 0] ** 2 + z[..., 1] ** 2)
  amp /= amp.mean()
  map_x = ((theta + span) / dtheta).astype(np.float32)
  amp = cv2.remap(amp, map_x, r.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
  low = rng.standard_normal(lowfreq_shape, dtype=np.float32)
  low = cv2.GaussianBlur(low, (0, 0), 1.5)
  low = cv2.resize(low / (low.std() + 1e-6), amp.shape[::-1], interpolation=cv2.INTER_CUBIC)
  return np.clip(amp * (1.0 + 0.22 * low) * 100.0, 0, 255).astype(np.uint8)


def near_field_texture(rng, truth, geo, r):
  """Chest-wall layers as radial bands: skin, fat (or breast), muscle, fascia."""
  s, r0 = geo["px_per_mm"], geo["r0"]
  nf = truth["near_field_mm"] * s
  n = int(math.ceil(geo["radius"])) + 2
  d = (np.arange(n) - r0) / nf
  prof = np.zeros(n, np.float32)
  prof[(d >= 0) & (d < 0.08)] = 190.0
  fat = (d >= 0.08) & (d < 0.45)
  prof[fat] = 45.0
  septa = rng.uniform(0.1, 0.43, size=rng.integers(2, 5))
  for c in septa:
    prof[np.abs(d - c) < 0.012 + 0.6 / nf] = 140.0
  muscle = (d >= 0.45) & (d < 0.9)
  prof[muscle] = 105.0 + 35.0 * np.sin(2 * math.pi * d[muscle] * rng.uniform(6, 9)) ** 2
  prof[(d >= 0.9) & (d <= 1.0)] = 175.0
  if truth["breast_band"]:
    breast = (d >= 0.1) & (d < 0.5)
    prof[breast] = 22.0 + 18.0 * (np.sin(2 * math.pi * d[breast] * 4.0) > 0.6)
  prof[(d < 0) | (d > 1.0)] = 0.0
  return prof.astype(np.uint8)[np.clip(r.astype(np.int32), 0, n - 1)]


def arc_poly(geo, r_in, r_out, widen=0.05, n=40):
  """The band between radii ``r_in`` and ``r_out`` across the fan (``widen`` radians wider)."""
  t = np.linspace(-geo["half_angle"] - widen, geo["half_angle"] + widen, n)
  ax, ay = geo["apex_x"], geo["apex_y"]
  outer = np.stack([ax + r_out * np.sin(t), ay + r_out * np.cos(t)], -1)
  inner = np.stack([ax + r_in * np.sin(t), ay + r_in * np.cos(t)], -1)[::-1]
  return np.concatenate([outer, inner])


def fixed(pts: np.ndarray) -> np.ndarray:
  """Vertices in pixels as fixed-point int32, for the cv2 calls given ``shift=SHIFT``."""
  return np.round(pts * (1 << SHIFT)).astype(np.int32)


def draw_liver(lab: np.ndarray, liver: dict[str, Any], geo: dict, near_field_mm: float) -> None:
  """The subcostal window into label map ``lab``: liver below the abdominal wall, dark hepatic
  veins, and the diaphragm (the bright PERICARDIUM class) along its curved deep edge."""
  s, r0 = geo["px_per_mm"], geo["r0"]
  half = geo["half_angle"] + 0.05
  t = np.linspace(-half, half, 40)
  r_top = r0 + near_field_mm * s - 2
  r_deep = r0 + (near_field_mm + liver["thickness_mm"]) * s * (1.0 + 0.25 * (t / half) ** 2)
  ax, ay = geo["apex_x"], geo["apex_y"]
  arc = lambda r, tt: np.stack([ax + r * np.sin(tt), ay + r * np.cos(tt)], -1)
  deep = arc(r_deep, t)
  top = arc(np.full(len(t), r_top), t)[::-1]
  cv2.fillPoly(lab, [fixed(np.concatenate([deep, top]))], shapes.LIVER, cv2.LINE_8, SHIFT)
  for frac_angle, frac_depth, radius in liver["veins"]:
    r = r_top + frac_depth * (r_deep.min() - r_top)
    centre = arc(np.array([r]), np.array([frac_angle * geo["half_angle"]]))[0]
    cv2.circle(
        lab,
        tuple(fixed(centre)),
        max(1, int(round(radius * s * (1 << SHIFT)))),
        shapes.VESSEL,
        -1,
        cv2.LINE_8,
        SHIFT,
    )
  cv2.polylines(
      lab, [fixed(deep)], False, shapes.PERICARDIUM, max(1, int(round(2.5 * s))), cv2.LINE_8, SHIFT
  )
