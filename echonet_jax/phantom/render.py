"""Renders one synthetic echo video: scan-sector fan, anatomy, speckle, attenuation, overlays.

Image formation, per frame (all uint8 cv2 passes; textures are drawn once per video):
  label map (cv2 polygons) -> echogenicity LUT + valves/lead -> chest-wall texture
  -> point-spread blur -> x speckle (polar, shifted with the heart) -> x depth gain -> log LUT
  -> burned-in text and ECG outside the fan.
The region masks come from the same label map, so they are exact per pixel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import cv2
import numpy as np

from echonet_jax.phantom import anatomy
from echonet_jax.phantom import burn_in
from echonet_jax.phantom import fan
from echonet_jax.phantom import patients
from echonet_jax.phantom import shapes
from echonet_jax.phantom import views

MASK_NAMES = ("lv", "la", "rv", "ra", "myocardium", "valves", "lead", "near_field")
_BIT = {name: 1 << k for k, name in enumerate(MASK_NAMES)}
_CLASS_BITS = {
    shapes.LV: _BIT["lv"],
    shapes.LA: _BIT["la"],
    shapes.RV: _BIT["rv"],
    shapes.RA: _BIT["ra"],
    shapes.MYOCARDIUM: _BIT["myocardium"],
    shapes.NEAR_FIELD: _BIT["near_field"],
}


@dataclasses.dataclass
class RenderedVideo:
  """One rendered video and what is known about each pixel."""

  frames: np.ndarray  # uint8 (F, rows, cols)
  masks: np.ndarray  # uint16 (F, rows, cols), bit k = MASK_NAMES[k]
  sector: np.ndarray  # bool (rows, cols): the scan-sector fan
  text: np.ndarray  # bool (rows, cols): burned-in text pixels
  overlay: np.ndarray  # bool (rows, cols): text, ECG strip and markers (all outside the fan)
  geometry: dict[str, float]  # fan apex, radius, half angle, px_per_mm, depth_mm, ...
  lv_volume: np.ndarray  # float (F,): LV volume of each frame, mL
  phase: np.ndarray  # float (F,): cardiac phase (0 = end-diastole)
  view: str = "A4C"  # the view class (views.VIEW_CLASSES)
  kind: str = ""  # for view "other": which of views.OTHER_KINDS


def render_study(
    patient: dict[str, Any],
    rng: np.random.Generator,
    view: str = "A4C",
    rows: int = 480,
    cols: int = 640,
    num_frames: int = 66,
    frame_time_ms: float = 33.3,
    kind: str | None = None,
) -> RenderedVideo:
  """Renders one video of ``patient`` (from :func:`sample_patient`) in ``view``.

  ``view`` is one of views.VIEW_CLASSES; for "other", ``kind`` picks one of views.OTHER_KINDS
  (default: drawn from ``rng``).
  """
  if view not in views.VIEW_CLASSES:
    raise ValueError(f"unknown view {view!r}; expected one of {views.VIEW_CLASSES}")
  if rows < 64 or cols < 64 or num_frames < 1 or frame_time_ms <= 0:
    raise ValueError(
        f"bad video size rows={rows} cols={cols} frames={num_frames} "
        f"frame_time_ms={frame_time_ms}"
    )
  truth = patient["truth"]
  plan = views.make_plan(rng, view, kind)  # draws nothing for A4C, A2C and PLAX
  depth_mm = patients.sample_depth_mm(rng, truth)
  geo = fan.geometry(rng, rows, cols, depth_mm * plan.depth_scale)
  s = geo["px_per_mm"]
  pad = int(math.ceil(2.0 * s)) + 1
  r_pad, th_pad = fan.polar(geo, rows, cols, pad)
  r, theta = r_pad[pad:-pad, pad:-pad], th_pad[pad:-pad, pad:-pad]
  sector = (r >= geo["r0"]) & (r <= geo["radius"]) & (np.abs(theta) <= geo["half_angle"])
  fan255 = sector.astype(np.uint8) * 255

  # Cardiac cycle.
  phase0 = rng.uniform(0.0, 1.0)
  hz = truth["heart_rate"] / 60.0
  phase_at = lambda t: phase0 + np.asarray(t) * hz
  times = np.arange(num_frames) * frame_time_ms / 1000.0
  phase = phase_at(times)
  scene = anatomy.build_scene(
      views.scene_truth(plan, truth), phase, plan.scene_view, **plan.scene_options
  )
  views.apply_cut(plan, scene)

  # Placement: heart frame (mm) -> pixels, with anatomical tilt and a small probe rotation.
  gamma = math.radians(rng.uniform(-5.0, 5.0))
  gap = rng.uniform(4.0, 9.0)
  depth0 = geo["r0"] / s + truth["near_field_mm"] + gap
  if not plan.original:
    beta, origin = views.place(plan, scene, depth0)
  elif view == "PLAX":
    beta, origin = math.radians(rng.normal(-8.0, 4.0)), (rng.normal(0.0, 5.0), depth0)
  else:
    ed = shapes.lv(truth, np.array([truth["edv"]]))
    lateral = (0.45 * ed["diameter"][0] if view == "A4C" else 0.0) + rng.normal(0.0, 4.0)
    beta = math.radians(rng.normal(2.0, 3.0))
    origin = (lateral, depth0 + 0.8 * truth["wall_mm"])

  def rot(a):
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

  lin = s * rot(gamma) @ rot(beta)
  off = np.array([geo["apex_x"], geo["apex_y"]]) + s * rot(gamma) @ np.array(origin)
  to_px = lambda pts: pts @ lin.T + off

  # Per-video textures and tables.
  lut = np.zeros(256, np.float32)
  for cls, val in (
      (shapes.FAN, 15.0),
      (shapes.MYOCARDIUM, 62.0),
      (shapes.HEART, 36.0),
      (shapes.PERICARDIUM, 230.0),
  ):
    lut[cls] = val * rng.uniform(0.85, 1.15)
  for cls in (shapes.LV, shapes.RV, shapes.LA, shapes.RA, shapes.VESSEL):
    lut[cls] = 2.5
  if plan.liver is not None:
    lut[shapes.LIVER] = plan.liver["gray"]
  echo_lut = np.clip(lut, 0, 255).astype(np.uint8)
  bit_lut = np.zeros(256, np.uint8)
  for cls, bit in _CLASS_BITS.items():
    bit_lut[cls] = bit
  speckle = fan.speckle(rng, geo, r_pad, th_pad, (max(4, rows // 24), max(4, cols // 24)))
  near_tex = fan.near_field_texture(rng, truth, geo, r)
  near_tex[~sector] = 0
  alpha = max(0.001, rng.uniform(0.004, 0.007) + 0.00015 * (truth["bmi"] - 25.0))
  depth_mm = np.maximum(r - geo["r0"], 0) / s
  gain = rng.uniform(1.0, 1.4)
  att = gain * np.exp(-alpha * depth_mm) * (1.0 - 0.5 * (np.abs(theta) / geo["half_angle"]) ** 2)
  att = (np.clip(att, 0, 1) * 255 * sector).astype(np.uint8)
  haze = cv2.resize(
      rng.uniform(0.0, 1.0, (max(4, rows // 30), max(4, cols // 30))).astype(np.float32),
      (cols, rows),
      interpolation=cv2.INTER_CUBIC,
  )
  haze = np.clip(
      haze * rng.uniform(10.0, 24.0) * np.exp(-depth_mm / rng.uniform(25.0, 45.0)), 0, 255
  )
  haze = (haze * sector).astype(np.uint8)
  gamma_c = rng.uniform(0.7, 0.85)
  comp_lut = (255.0 * (np.arange(256) / 255.0) ** gamma_c).astype(np.uint8)
  duration_s = num_frames * frame_time_ms / 1000.0
  overlay, text, ecg_box = burn_in.overlay(
      rng, patient, geo, rows, cols, sector, phase_at, duration_s, plan.label, frame_time_ms
  )
  sig_lat, sig_ax = max(0.6, 1.3 * s), max(0.4, 0.6 * s)

  # Shapes in pixels, fixed point.
  regions = [(cls, fan.fixed(to_px(poly))) for cls, poly in scene.regions]
  lines = [
      (fan.fixed(to_px(pl)), max(1, int(round(th * s))), inten, name)
      for pl, th, inten, name in scene.lines
  ]
  discs = [
      (fan.fixed(to_px(c)), max(1, int(round(rad * s * (1 << fan.SHIFT)))), inten, name)
      for c, rad, inten, name in scene.discs
  ]
  peri = [(fan.fixed(to_px(pl)), max(1, int(round(th * s)))) for pl, th in scene.pericardium]
  hull_pts = to_px(scene.periph).astype(np.float32) if scene.hull else None
  near_poly = fan.fixed(fan.arc_poly(geo, geo["r0"] - 2, geo["r0"] + truth["near_field_mm"] * s))
  shift_y = np.round(1.5 * s * (1.0 - shapes.lv_volume_fraction(phase))).astype(int)

  base = (sector * shapes.FAN).astype(np.uint8)
  if plan.liver is not None:
    fan.draw_liver(base, plan.liver, geo, truth["near_field_mm"])
  lab = np.empty_like(base)
  extra = np.empty_like(base)
  frames = np.empty((num_frames, rows, cols), np.uint8)
  masks = np.empty((num_frames, rows, cols), np.uint8)
  for i in range(num_frames):
    np.copyto(lab, base)
    if hull_pts is not None:
      hull = cv2.convexHull(hull_pts[i])
      cv2.fillPoly(lab, [fan.fixed(hull[:, 0])], shapes.HEART, cv2.LINE_8, fan.SHIFT)
    for pts, th in peri:
      cv2.polylines(lab, [pts[i]], False, shapes.PERICARDIUM, th, cv2.LINE_8, fan.SHIFT)
    for cls, pts in regions:
      cv2.fillPoly(lab, [pts[i]], cls, cv2.LINE_8, fan.SHIFT)
    cv2.fillPoly(lab, [near_poly], shapes.NEAR_FIELD, cv2.LINE_8, fan.SHIFT)
    cv2.bitwise_and(lab, fan255, dst=lab)
    echo = cv2.LUT(lab, echo_lut)
    bits = cv2.LUT(lab, bit_lut)
    extra.fill(0)
    for pts, th, inten, name in lines:
      cv2.polylines(echo, [pts[i]], False, inten, th, cv2.LINE_AA, fan.SHIFT)
      if name:
        cv2.polylines(extra, [pts[i]], False, _BIT[name], th, cv2.LINE_8, fan.SHIFT)
    for c, rad, inten, name in discs:
      cv2.circle(echo, tuple(c[i]), rad, inten, -1, cv2.LINE_AA, fan.SHIFT)
      if name:
        cv2.circle(extra, tuple(c[i]), rad, _BIT[name], -1, cv2.LINE_8, fan.SHIFT)
    cv2.bitwise_or(bits, extra, dst=bits)
    cv2.bitwise_and(bits, fan255, dst=masks[i])
    cv2.bitwise_and(echo, fan255, dst=echo)
    cv2.max(echo, near_tex, dst=echo)
    echo = cv2.GaussianBlur(echo, (0, 0), sigmaX=sig_lat, sigmaY=sig_ax)
    dy = pad + shift_y[i]
    echo = cv2.multiply(echo, speckle[dy : dy + rows, pad : pad + cols], scale=1.0 / 100.0)
    echo = cv2.multiply(echo, att, scale=1.0 / 255.0)
    cv2.add(echo, haze, dst=echo)
    out = cv2.LUT(echo, comp_lut)
    cv2.max(out, overlay, dst=frames[i])
    if ecg_box is not None:
      x = int(ecg_box[0] + (ecg_box[1] - ecg_box[0]) * times[i] / duration_s)
      cv2.line(frames[i], (x, ecg_box[2]), (x, ecg_box[3]), 255, 1)

  overlay_all = overlay > 0
  if ecg_box is not None:
    overlay_all[ecg_box[2] : ecg_box[3] + 1, ecg_box[0] : ecg_box[1] + 1] = True
  vol = shapes.lv_volumes(truth, shapes.lv_volume_fraction(phase))
  geo.update(frame_time_ms=frame_time_ms, gamma_deg=math.degrees(gamma))
  return RenderedVideo(
      frames=frames,
      masks=masks.astype(np.uint16),
      sector=sector,
      text=text,
      overlay=overlay_all,
      geometry=geo,
      lv_volume=vol,
      phase=phase,
      view=view,
      kind=plan.kind,
  )


def render_video(
    patient: dict[str, Any], rng: np.random.Generator, *args, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
  """Renders one video: frames uint8 (F, rows, cols) and region masks uint16 (F, rows, cols).

  Takes the arguments of :func:`render_study` (``view``, ``rows``, ``cols``, ``num_frames``,
  ``frame_time_ms``, ``kind``) and draws the same video.
  """
  video = render_study(patient, rng, *args, **kwargs)
  return video.frames, video.masks
