"""Parasternal short-axis (PSAX) anatomy: a ring-shaped LV with the RV crescent wrapped around it.

Same conventions as shapes.py (mm, arrays (F, n, 2), y away from the probe). Display follows the
echo convention for PSAX: anterior (RV) at the top and to the image left, the inferolateral wall at
the bottom. The cut is at the papillary-muscle level (two muscles inside the cavity) or at the
mitral level (the "fish-mouth" leaflets opening in diastole).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from echonet_jax.phantom import shapes
from echonet_jax.phantom.shapes import Scene

PSAX_LEVELS = ("papillary", "mitral")


def _rotated_ellipse(
    center: np.ndarray, a: np.ndarray, b: np.ndarray, angle: float, n: int = 40
) -> np.ndarray:
  """Ellipse (F, n, 2) with semi-axes a (along ``angle``) and b, centres (F, 2)."""
  t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
  u = np.stack([a[:, None] * np.cos(t), b[:, None] * np.sin(t)], -1)
  c, s = math.cos(angle), math.sin(angle)
  return u @ np.array([[c, s], [-s, c]]) + center[:, None]


def psax_scene(truth: dict[str, Any], phase: np.ndarray, level: str = "papillary") -> Scene:
  """PSAX scene, origin at the LV centre; the LV cavity radius follows the LV volume."""
  if level not in PSAX_LEVELS:
    raise ValueError(f"unknown PSAX level {level!r}; expected one of {PSAX_LEVELS}")
  f, vol, lv = shapes.lv_cycle(truth, phase)
  num = len(phase)
  hs = truth["heart_scale"]
  wall = lv["wall"]
  r_cav = (0.5 if level == "mitral" else 0.47) * lv["diameter"]
  r_out = r_cav + wall
  centre = np.zeros((num, 2))
  wobble = (0.02, truth["atrial_shape"][1], truth["atrial_shape"][2])
  scene = Scene()

  # RV: an ellipse up and to the left of the LV; the LV drawn over it leaves the crescent.
  toward = math.radians(-120.0)  # direction LV centre -> RV centre (y down: up-left)
  d = np.array([math.cos(toward), math.sin(toward)])
  r_ed = r_out[np.argmax(vol)]
  rv_scale = truth["rv_scale"] * (1.0 - 0.15 * (1.0 - f))
  rv_c = centre + d * (0.6 * r_ed)
  rv_radial = (0.4 * r_ed + 15.0 * hs * rv_scale) * np.ones(num)
  rv_along = 0.95 * r_ed * rv_scale * np.ones(num)
  rv = _rotated_ellipse(rv_c, rv_radial, rv_along, toward)
  rv_wall = _rotated_ellipse(rv_c, rv_radial + 4.0, rv_along + 4.0, toward)
  outer = shapes.ellipse(centre, r_out, 0.97 * r_out, 48)
  cavity = shapes.ellipse(centre, r_cav, 0.97 * r_cav, 48, wobble=wobble)
  scene.regions += [
      (shapes.MYOCARDIUM, rv_wall),
      (shapes.RV, rv),
      (shapes.MYOCARDIUM, outer),
      (shapes.LV, cavity),
  ]
  vint = shapes.valve_intensity(truth)

  if level == "papillary":  # muscles inside the cavity; counted as cavity, like EchoNet's traces
    for angle in (math.radians(35.0), math.radians(135.0)):
      spot = centre + 0.6 * r_cav[:, None] * np.array([math.cos(angle), math.sin(angle)])
      scene.discs.append((spot, 0.22 * float(np.mean(r_cav)), 62.0, None))
  else:  # mitral leaflets: two arcs apart in diastole, meeting at the centre in systole
    opening = shapes.av_valve_opening(phase)
    x = np.linspace(-0.75, 0.75, 12)[None] * r_cav[:, None]
    bow = 0.18 * r_cav[:, None] * (1.0 - (x / (0.75 * r_cav[:, None])) ** 2)
    gap = (0.05 + 0.55 * opening)[:, None] * r_cav[:, None]
    anterior = np.stack([x, -gap - bow], -1)
    posterior = np.stack([0.8 * x, 0.8 * gap + bow], -1)
    scene.lines += [(anterior, 1.8, vint, "valves"), (posterior, 1.8, vint, "valves")]

  if truth["lead_visible"]:  # the RV lead crosses the plane: a bright dot with reverberations
    mid = 0.5 * (r_out + 0.6 * r_ed + rv_radial)  # halfway across the crescent
    spot = centre + mid[:, None] * d
    for k, inten in ((2, 110.0), (1, 170.0)):
      scene.discs.append((spot + np.array([0.0, 2.5 * k]), 1.1, inten, None))
    scene.discs.append((spot, 1.4, 255.0, "lead"))

  # Pericardium: bright behind the inferolateral wall (specular), thin around the rest.
  scene.pericardium.append(
      (
          shapes.ellipse(centre, r_out + 3.0, 0.97 * r_out + 3.0, 24, 0.1 * math.pi, 0.9 * math.pi),
          3.0,
      )
  )
  scene.periph = np.concatenate([outer, rv_wall], axis=1)
  return scene
