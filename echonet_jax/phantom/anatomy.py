"""Cardiac anatomy of one video, per view: the apical views and PLAX, and the scene of every view.

Shapes are in millimetres, vectorised over frames (see shapes.py); PSAX is drawn by short_axis.py.
Display follows the adult echo convention: apex at the top, LV on the image right, RV on the left,
atria at the bottom.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from echonet_jax.phantom import shapes
from echonet_jax.phantom import short_axis
from echonet_jax.phantom.shapes import Scene

# Standard views the phantom draws (the view classifier adds "other"; see views.py).
VIEWS = ("A4C", "A2C", "A3C", "A5C", "PLAX", "PSAX")


def _mitral(scene: Scene, truth, hinge_s, hinge_l, width, opening, intensity, leaflet_ratio=0.6):
  """Two leaflets from the septal and lateral hinges; closed across the annulus, open into the LV."""
  ang = np.deg2rad(12.0 * (1 - opening) - 80.0 * opening)
  scene.lines.append(
      (shapes.segment(hinge_s, leaflet_ratio * width, ang), 1.8, intensity, "valves")
  )
  scene.lines.append(
      (
          shapes.segment(hinge_l, 0.75 * leaflet_ratio * width, math.pi - ang),
          1.8,
          intensity,
          "valves",
      )
  )
  scene.discs.append((hinge_s, 2.0, intensity, "valves"))
  scene.discs.append((hinge_l, 2.0, intensity, "valves"))


def _outflow(
    scene: Scene, truth, phase, top: np.ndarray, bottom: np.ndarray, intensity: float
) -> np.ndarray:
  """Draws the LV outflow tract and aortic root from ``top`` to ``bottom`` (F, 2); returns it.

  A VESSEL tube with bright walls and two aortic cusps that open along it in systole and meet
  across it in diastole.
  """
  width = 26.0 * truth["heart_scale"]
  axis = bottom - top
  axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
  normal = np.stack([-axis[:, 1], axis[:, 0]], -1)
  root = top + 0.35 * (bottom - top)  # the annulus, where the cusps hinge
  tube = np.stack(
      [
          top + 0.38 * width * normal,
          root + 0.4 * width * normal,
          bottom + 0.5 * width * normal,
          bottom - 0.5 * width * normal,
          root - 0.4 * width * normal,
          top - 0.38 * width * normal,
      ],
      1,
  )
  scene.regions.append((shapes.VESSEL, tube))
  for side in (slice(0, 3), slice(3, 6)):  # the aortic walls, continuous with the septum/leaflet
    scene.lines.append((tube[:, side], 2.0, 140.0, None))
  ph = np.mod(phase, 1.0)
  open_ = (ph > 0.03) & (ph < 0.33)
  along = np.arctan2(axis[:, 1], axis[:, 0])
  for side in (1.0, -1.0):
    hinge = root + side * 0.4 * width * normal
    angle = np.where(open_, along + side * 0.15, along - side * 0.5 * math.pi)
    length = np.where(open_, 0.42 * width, 0.4 * width)
    scene.lines.append((shapes.segment(hinge, length, angle), 1.5, intensity, "valves"))
  return tube


def apical_scene(truth: dict[str, Any], phase: np.ndarray, view: str) -> Scene:
  """An apical scene, origin at the LV cavity apex.

  A4C: four chambers; A2C: LV and LA; A3C: LV, LA to the lower left and the aortic outflow to the
  lower right; A5C: A4C with the aortic root between the atria (the "fifth chamber").
  """
  f, _, lv = shapes.lv_cycle(truth, phase)
  num = len(phase)
  hs = truth["heart_scale"]
  length, base, wall = lv["length"], lv["base"], lv["wall"]
  opening = shapes.av_valve_opening(phase)
  vint = shapes.valve_intensity(truth)
  scene = Scene()

  # Left atrium: largest at end-systole; area-length shape from its volume.
  la_vol = truth["la_volume"] * (1.0 - 0.35 * f)
  la_len = 58.0 * (la_vol / 55.0) ** (1 / 3)
  la_w = 4.0 * np.sqrt(3.0 * math.pi * la_len * la_vol * 1000.0 / 8.0) / (math.pi * la_len)
  la_c = np.stack([(-0.3 if view == "A3C" else 0.1) * la_w, length + 2.5 + la_len / 2], -1)
  la = shapes.ellipse(la_c, la_w / 2, la_len / 2, wobble=truth["atrial_shape"][:3])
  scene.regions.append((shapes.MYOCARDIUM, lv["outer"]))

  periph = [lv["outer"], shapes.ellipse(la_c, la_w / 2 + 3, la_len / 2 + 3)]
  if view in ("A4C", "A5C"):
    # Right ventricle along the septum; tricuspid annulus a little more apical than the mitral.
    rv_w = 31.0 * hs * truth["rv_scale"] * (1.0 - 0.22 * (1.0 - f))
    y0 = 0.35 * length[0] * np.ones(num)
    y_tv = length - 6.0 * hs
    u = np.linspace(0.0, 1.0, 20)[None]
    y = y0[:, None] + u * (y_tv - y0)[:, None]
    x_sept = -(
        shapes.lv_half_width(np.clip(y / length[:, None], 0, 1)) * lv["diameter"][:, None]
        + 1.1 * wall[:, None]
    )
    septal = np.stack([x_sept, y], -1)
    free = np.stack([x_sept - rv_w[:, None] * np.sin(0.5 * math.pi * u) ** 0.6, y], -1)
    scene.regions.append(
        (
            shapes.MYOCARDIUM,
            np.concatenate([septal, shapes.offset(free, np.full(num, 4.0), 1.0)[:, ::-1]], 1),
        )
    )
    rv = np.concatenate([septal, free[:, ::-1]], axis=1)
    # Right atrium, separated from the LA by the interatrial septum.
    ra_h = 46.0 * hs * (1.0 - 0.25 * f)
    ra_w = 36.0 * hs * (1.0 - 0.2 * f)
    ra_c = np.stack(
        [la_c[:, 0] - la_w / 2 - truth["septum_ias_mm"] - ra_w / 2, y_tv + 2.5 + ra_h / 2], -1
    )
    ra = shapes.ellipse(ra_c, ra_w / 2, ra_h / 2, wobble=truth["atrial_shape"][3:])
    periph += [free, shapes.ellipse(ra_c, ra_w / 2 + 3, ra_h / 2 + 3)]
    scene.regions += [(shapes.RV, rv), (shapes.RA, ra)]
    tv_s = septal[:, -1]
    tv_l = free[:, -1]
    _mitral(scene, truth, tv_l, tv_s, rv_w, opening, vint * 0.9, 0.55)
    if truth["lead_visible"]:
      start = np.stack([ra_c[:, 0] - 0.1 * ra_w, ra_c[:, 1] + 0.3 * ra_h], -1)
      through = 0.5 * (tv_s + tv_l)
      end = np.stack([septal[:, 4, 0] - 0.3 * rv_w, septal[:, 4, 1]], -1)
      ctrl = 2.0 * through - 0.5 * (start + end)
      t = np.linspace(0.0, 1.0, 16)[None, :, None]
      lead = (1 - t) ** 2 * start[:, None] + 2 * (1 - t) * t * ctrl[:, None] + t**2 * end[:, None]
      for k, inten in ((2, 110.0), (1, 170.0)):  # reverberation tail, deeper along the beam
        scene.lines.append((lead + np.array([0.0, 3.0 * k]), 1.6, inten, None))
      scene.lines.append((lead, 2.4, 255.0, "lead"))
  if view in ("A3C", "A5C"):  # the outflow tract over the LA and basal wall, under the LV cavity
    x_top = (0.22 if view == "A3C" else -0.2) * base
    top = np.stack([x_top, length - 1.0], -1)
    bottom = top + np.array([14.0 if view == "A3C" else -5.0, 38.0]) * hs
    scene.regions.append((shapes.LA, la))
    periph.append(_outflow(scene, truth, phase, top, bottom, vint))
    scene.regions.append((shapes.LV, lv["cavity"]))
  else:
    scene.regions += [(shapes.LV, lv["cavity"]), (shapes.LA, la)]

  hinge_s = np.stack([-base / 2, length], -1)
  hinge_l = np.stack([base / 2, length], -1)
  _mitral(scene, truth, hinge_s, hinge_l, base, opening, vint)
  if truth["annular_calcification"]:
    scene.discs.append((hinge_l + np.array([1.5, 1.0]), 3.5, 255.0, "valves"))

  # Pericardium: bright below the atria (specular), fainter along the lateral LV wall.
  pts = np.concatenate(periph, axis=1)
  left = pts[..., 0].min(1) - 3.0
  right = pts[..., 0].max(1) + 3.0
  bottom = pts[..., 1].max(1) + 2.0
  center = np.stack([(left + right) / 2, length], -1)
  scene.pericardium.append(
      (
          shapes.ellipse(
              center, (right - left) / 2, bottom - length, 30, 0.2 * math.pi, 0.8 * math.pi
          ),
          3.0,
      )
  )
  scene.lines.append(
      (shapes.offset(lv["outer_right"][:, 8:], np.full(num, 3.0), -1.0), 2.0, 150.0, None)
  )
  scene.periph = pts  # used for the hull
  return scene


def plax_scene(truth: dict[str, Any], phase: np.ndarray) -> Scene:
  """Parasternal long axis: RV on top, septum, LV with apex off to the left, aorta and LA right."""
  f, _, lv = shapes.lv_cycle(truth, phase)
  num = len(phase)
  hs = truth["heart_scale"]
  wall = lv["wall"]
  diam = 0.95 * lv["diameter"]
  ones = np.ones(num)
  scene = Scene()
  rv_h = 26.0 * hs * truth["rv_scale"] * (1.0 - 0.15 * (1.0 - f))
  rv_top = 4.0 * ones
  rv_bot = rv_top + rv_h
  lv_c = np.stack([-45.0 * ones, rv_bot + 1.1 * wall + diam / 2], -1)
  outer = shapes.ellipse(lv_c, 55.0 + wall, diam / 2 + 1.05 * wall, 48)
  cavity = shapes.ellipse(lv_c, 55.0 * ones, diam / 2, 48)
  rv = np.stack(
      [
          np.stack([-110 * ones, rv_top], -1),
          np.stack([25 * ones, rv_top + 2], -1),
          np.stack([25 * ones, rv_bot], -1),
          np.stack([-110 * ones, rv_bot], -1),
      ],
      1,
  )
  rv_wall = rv + np.array([[0, -4.0], [0, -4.0], [4.0, 0], [0, 0]])
  dao = 30.0 * hs * (1.0 + 0.04 * (1 - f))
  ao_top = rv_bot + 1.0
  aorta = np.stack(
      [
          np.stack([8 * ones, ao_top], -1),
          np.stack([80 * ones, ao_top - 6], -1),
          np.stack([80 * ones, ao_top - 6 + dao], -1),
          np.stack([8 * ones, ao_top + dao], -1),
      ],
      1,
  )
  la_vol = truth["la_volume"] * (1.0 - 0.35 * f)
  la_d = 38.0 * (la_vol / 55.0) ** (1 / 3)
  la_c = np.stack([40.0 * ones, ao_top + dao + 4.0 + la_d / 2], -1)
  la = shapes.ellipse(la_c, 0.6 * la_d * ones, la_d / 2, wobble=truth["atrial_shape"][:3])
  scene.regions += [
      (shapes.MYOCARDIUM, rv_wall),
      (shapes.MYOCARDIUM, outer),
      (shapes.RV, rv),
      (shapes.VESSEL, aorta),
      (shapes.LV, cavity),
      (shapes.LA, la),
  ]
  vint = shapes.valve_intensity(truth)
  opening = shapes.av_valve_opening(phase)
  ao_bot = ao_top + dao
  hinge_a = np.stack([8.0 * ones, ao_bot], -1)
  hinge_p = np.stack([14.0 * ones, lv_c[:, 1] + diam / 2], -1)
  gap = np.hypot(*(hinge_p - hinge_a).T)
  ang = np.deg2rad(100.0 * (1 - opening) + 185.0 * opening)
  scene.lines.append((shapes.segment(hinge_a, 0.9 * gap + 4, ang), 1.8, vint, "valves"))
  scene.lines.append(
      (
          shapes.segment(
              hinge_p,
              0.45 * gap + 2,
              ang - np.deg2rad(40.0) * (1 - opening) - math.pi / 2 * (1 - opening),
          ),
          1.8,
          vint,
          "valves",
      )
  )
  systole = np.clip(1.0 - (np.mod(phase, 1.0) - 0.02) / 0.3, 0, 1) * (np.mod(phase, 1.0) < 0.34)
  cusp = 0.45 * dao
  hinge_top = np.stack([12.0 * ones, ao_top - 1], -1)
  hinge_bot = np.stack([12.0 * ones, ao_bot - 1], -1)
  a_top = np.deg2rad(90.0 - 80.0 * (systole > 0.1))
  scene.lines.append((shapes.segment(hinge_top, cusp, a_top), 1.5, vint, "valves"))
  scene.lines.append((shapes.segment(hinge_bot, cusp, -a_top), 1.5, vint, "valves"))
  if truth["lead_visible"]:
    y = rv_top + 0.55 * rv_h
    lead = np.stack([np.stack([-80 * ones, y - 3], -1), np.stack([15 * ones, y + 2], -1)], 1)
    for k, inten in ((2, 110.0), (1, 170.0)):
      scene.lines.append((lead + np.array([0.0, 3.0 * k]), 1.6, inten, None))
    scene.lines.append((lead, 2.4, 255.0, "lead"))
  bottom = np.maximum(lv_c[:, 1] + diam / 2 + 1.05 * wall, la_c[:, 1] + la_d / 2) + 3.0
  peri = np.stack(
      [
          np.stack([-110 * ones, lv_c[:, 1] + diam / 2 + 1.05 * wall + 3], -1),
          np.stack([-10 * ones, lv_c[:, 1] + diam / 2 + 1.05 * wall + 4], -1),
          np.stack([40 * ones, bottom + 2], -1),
          np.stack([85 * ones, bottom - 6], -1),
      ],
      1,
  )
  scene.pericardium.append((peri, 3.5))
  scene.hull = False
  return scene


def build_scene(truth: dict[str, Any], phase: np.ndarray, view: str, **options: Any) -> Scene:
  """The scene of ``view`` (one of VIEWS) over the frames' cardiac phases.

  ``options`` go to the view's scene function (PSAX: ``level``).
  """
  if view in ("A4C", "A2C", "A3C", "A5C"):
    return apical_scene(truth, phase, view)
  if view == "PLAX":
    return plax_scene(truth, phase)
  if view == "PSAX":
    return short_axis.psax_scene(truth, phase, **options)
  raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
