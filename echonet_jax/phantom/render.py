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

from echonet_jax.phantom import anatomy, views

MASK_NAMES = ("lv", "la", "rv", "ra", "myocardium", "valves", "lead", "near_field")
_BIT = {name: 1 << k for k, name in enumerate(MASK_NAMES)}
_CLASS_BITS = {anatomy.LV: _BIT["lv"], anatomy.LA: _BIT["la"], anatomy.RV: _BIT["rv"],
               anatomy.RA: _BIT["ra"], anatomy.MYOCARDIUM: _BIT["myocardium"],
               anatomy.NEAR_FIELD: _BIT["near_field"]}
_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
_FONT = cv2.FONT_HERSHEY_SIMPLEX


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


def _fan_geometry(rng: np.random.Generator, rows: int, cols: int, depth_mm: float) -> dict:
  ax = cols / 2 + rng.normal(0.0, 0.008 * cols)
  ay = rows * rng.uniform(0.055, 0.075)
  radius = 0.80 * rows
  r0 = 0.035 * radius
  max_half = math.asin(min(1.0, (cols / 2 - 0.03 * cols - abs(ax - cols / 2)) / radius))
  half = min(math.radians(rng.uniform(38.0, 44.0)), max_half)
  return dict(apex_x=ax, apex_y=ay, radius=radius, r0=r0, half_angle=half,
              px_per_mm=(radius - r0) / depth_mm, depth_mm=depth_mm)


def _polar(geo: dict, rows: int, cols: int, pad: int):
  y, x = np.mgrid[-pad:rows + pad, -pad:cols + pad].astype(np.float32)
  dx, dy = x - geo["apex_x"], y - geo["apex_y"]
  return np.hypot(dx, dy), np.arctan2(dx, dy)


def _speckle(rng, geo, r, theta, lowfreq_shape):
  """Fully developed speckle drawn on the polar beam grid, scan-converted; mean ~100 (uint8)."""
  radius, s = geo["radius"], geo["px_per_mm"]
  span = geo["half_angle"] + 0.35
  dtheta = 2.0 / radius
  n_t, n_r = int(2 * span / dtheta) + 2, int(radius * 1.15) + 2
  z = rng.standard_normal((n_r, n_t, 2), dtype=np.float32)
  z = cv2.GaussianBlur(z, (0, 0), sigmaX=2.0, sigmaY=max(0.6, 0.5 * s))
  amp = np.sqrt(z[..., 0]**2 + z[..., 1]**2)
  amp /= amp.mean()
  map_x = ((theta + span) / dtheta).astype(np.float32)
  amp = cv2.remap(amp, map_x, r.astype(np.float32), cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REFLECT)
  low = rng.standard_normal(lowfreq_shape, dtype=np.float32)
  low = cv2.GaussianBlur(low, (0, 0), 1.5)
  low = cv2.resize(low / (low.std() + 1e-6), amp.shape[::-1], interpolation=cv2.INTER_CUBIC)
  return np.clip(amp * (1.0 + 0.22 * low) * 100.0, 0, 255).astype(np.uint8)


def _near_field_texture(rng, truth, geo, r):
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


def _arc_poly(geo, r_in, r_out, widen=0.05, n=40):
  t = np.linspace(-geo["half_angle"] - widen, geo["half_angle"] + widen, n)
  ax, ay = geo["apex_x"], geo["apex_y"]
  outer = np.stack([ax + r_out * np.sin(t), ay + r_out * np.cos(t)], -1)
  inner = np.stack([ax + r_in * np.sin(t), ay + r_in * np.cos(t)], -1)[::-1]
  return np.concatenate([outer, inner])


def _fixed(pts: np.ndarray) -> np.ndarray:
  return np.round(pts * (1 << _SHIFT)).astype(np.int32)


def _draw_liver(lab: np.ndarray, liver: dict[str, Any], geo: dict, near_field_mm: float) -> None:
  """The subcostal window into label map ``lab``: liver below the abdominal wall, dark hepatic
  veins, and the diaphragm (the bright PERICARDIUM class) along its curved deep edge."""
  s, r0 = geo["px_per_mm"], geo["r0"]
  half = geo["half_angle"] + 0.05
  t = np.linspace(-half, half, 40)
  r_top = r0 + near_field_mm * s - 2
  r_deep = r0 + (near_field_mm + liver["thickness_mm"]) * s * (1.0 + 0.25 * (t / half)**2)
  ax, ay = geo["apex_x"], geo["apex_y"]
  arc = lambda r, tt: np.stack([ax + r * np.sin(tt), ay + r * np.cos(tt)], -1)
  deep = arc(r_deep, t)
  top = arc(np.full(len(t), r_top), t)[::-1]
  cv2.fillPoly(lab, [_fixed(np.concatenate([deep, top]))], anatomy.LIVER, cv2.LINE_8, _SHIFT)
  for frac_angle, frac_depth, radius in liver["veins"]:
    r = r_top + frac_depth * (r_deep.min() - r_top)
    centre = arc(np.array([r]), np.array([frac_angle * geo["half_angle"]]))[0]
    cv2.circle(lab, tuple(_fixed(centre)), max(1, int(round(radius * s * (1 << _SHIFT)))),
               anatomy.VESSEL, -1, cv2.LINE_8, _SHIFT)
  cv2.polylines(lab, [_fixed(deep)], False, anatomy.PERICARDIUM, max(1, int(round(2.5 * s))),
                cv2.LINE_8, _SHIFT)


def _ecg(phase_at, duration_s, x0, x1, y_mid, amp):
  """The ECG trace over the whole video (x pixels), from the cardiac phase."""
  xs = np.arange(int(x0), int(x1))
  t = (xs - x0) / (x1 - x0) * duration_s
  ph = np.mod(phase_at(t) + 0.5, 1.0) - 0.5
  wave = (1.0 * np.exp(-0.5 * (ph / 0.008)**2) - 0.12 * np.exp(-0.5 * ((ph + 0.016) / 0.006)**2)
          - 0.25 * np.exp(-0.5 * ((ph - 0.018) / 0.007)**2)
          + 0.28 * np.exp(-0.5 * ((ph - 0.28) / 0.045)**2)
          + 0.12 * np.exp(-0.5 * ((ph + 0.12) / 0.025)**2))
  return np.stack([xs, y_mid - amp * wave], -1)


def _overlay(rng, patient, geo, rows, cols, sector, phase_at, duration_s, view, frame_time_ms):
  """Burned-in text (name, date, settings), depth marks and ECG strip; never inside the fan."""
  ident = patient.get("identity", {})
  scale = max(0.28, 0.42 * rows / 480.0)
  line_h = max(9, int(round(30 * scale)))
  text = np.zeros((rows, cols), np.uint8)
  left = [ident.get("display_name", "ANONYMOUS"), ident.get("display_date", ""),
          ident.get("institution", "")]
  for k, s in enumerate(left):
    cv2.putText(text, s, (int(0.012 * cols), (k + 1) * line_h), _FONT, scale, 220, 1, cv2.LINE_AA)
  settings = [view, f"FR {1000.0 / frame_time_ms:.0f}Hz", f"{geo['depth_mm'] / 10:.0f}cm",
              f"G {int(rng.integers(40, 70))}%", f"C {int(rng.integers(40, 60))}",
              f"P {rng.choice(['Low', 'Med'])}", "HGen"]
  for k, s in enumerate(settings):
    cv2.putText(text, s, (int(0.87 * cols), (k + 1) * line_h), _FONT, scale, 220, 1, cv2.LINE_AA)
  other = np.zeros_like(text)
  s_mm = geo["px_per_mm"]
  for cm in range(1, int(geo["depth_mm"] // 10) + 1):
    y = geo["apex_y"] + geo["r0"] + cm * 10 * s_mm
    cv2.circle(other, (int(0.83 * cols), int(y)), max(1, rows // 240), 200, -1)
  cv2.circle(other, (int(geo["apex_x"] + 0.09 * cols), int(0.06 * rows)), max(2, rows // 100),
             180, -1)
  x0, x1 = 0.12 * cols, 0.88 * cols
  y_mid = 0.955 * rows
  trace = _ecg(phase_at, duration_s, x0, x1, y_mid, 0.04 * rows)
  cv2.polylines(other, [_fixed(trace)], False, 190, 1, cv2.LINE_AA, _SHIFT)
  keep_out = cv2.dilate(sector.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
  text[keep_out] = 0
  other[keep_out] = 0
  layer = np.maximum(text, other)
  ecg_box = (int(x0), int(x1), int(0.91 * rows), min(rows - 1, int(0.995 * rows)))
  if keep_out[ecg_box[2]:ecg_box[3] + 1, ecg_box[0]:ecg_box[1]].any():
    ecg_box = None  # too small an image: no room for the cursor below the fan
  return layer, text > 0, ecg_box


def render_study(patient: dict[str, Any], rng: np.random.Generator, view: str = "A4C",
                 rows: int = 480, cols: int = 640, num_frames: int = 66,
                 frame_time_ms: float = 33.3, kind: str | None = None) -> RenderedVideo:
  """Renders one video of ``patient`` (from :func:`sample_patient`) in ``view``.

  ``view`` is one of views.VIEW_CLASSES; for "other", ``kind`` picks one of views.OTHER_KINDS
  (default: drawn from ``rng``).
  """
  from echonet_jax.phantom import patients  # pylint: disable=g-import-not-at-top

  if view not in views.VIEW_CLASSES:
    raise ValueError(f"unknown view {view!r}; expected one of {views.VIEW_CLASSES}")
  if rows < 64 or cols < 64 or num_frames < 1 or frame_time_ms <= 0:
    raise ValueError(f"bad video size rows={rows} cols={cols} frames={num_frames} "
                     f"frame_time_ms={frame_time_ms}")
  truth = patient["truth"]
  plan = views.make_plan(rng, view, kind)  # draws nothing for A4C, A2C and PLAX
  depth_mm = patients.sample_depth_mm(rng, truth)
  geo = _fan_geometry(rng, rows, cols, depth_mm * plan.depth_scale)
  s = geo["px_per_mm"]
  pad = int(math.ceil(2.0 * s)) + 1
  r_pad, th_pad = _polar(geo, rows, cols, pad)
  r, theta = r_pad[pad:-pad, pad:-pad], th_pad[pad:-pad, pad:-pad]
  sector = (r >= geo["r0"]) & (r <= geo["radius"]) & (np.abs(theta) <= geo["half_angle"])
  fan255 = sector.astype(np.uint8) * 255

  # Cardiac cycle.
  phase0 = rng.uniform(0.0, 1.0)
  hz = truth["heart_rate"] / 60.0
  phase_at = lambda t: phase0 + np.asarray(t) * hz
  times = np.arange(num_frames) * frame_time_ms / 1000.0
  phase = phase_at(times)
  scene = anatomy.build_scene(views.scene_truth(plan, truth), phase, plan.scene_view,
                              **plan.scene_options)
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
    ed = anatomy._lv(truth, np.array([truth["edv"]]))  # pylint: disable=protected-access
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
  for cls, val in ((anatomy.FAN, 15.0), (anatomy.MYOCARDIUM, 62.0), (anatomy.HEART, 36.0),
                   (anatomy.PERICARDIUM, 230.0)):
    lut[cls] = val * rng.uniform(0.85, 1.15)
  for cls in (anatomy.LV, anatomy.RV, anatomy.LA, anatomy.RA, anatomy.VESSEL):
    lut[cls] = 2.5
  if plan.liver is not None:
    lut[anatomy.LIVER] = plan.liver["gray"]
  echo_lut = np.clip(lut, 0, 255).astype(np.uint8)
  bit_lut = np.zeros(256, np.uint8)
  for cls, bit in _CLASS_BITS.items():
    bit_lut[cls] = bit
  speckle = _speckle(rng, geo, r_pad, th_pad, (max(4, rows // 24), max(4, cols // 24)))
  near_tex = _near_field_texture(rng, truth, geo, r)
  near_tex[~sector] = 0
  alpha = max(0.001, rng.uniform(0.004, 0.007) + 0.00015 * (truth["bmi"] - 25.0))
  depth_mm = np.maximum(r - geo["r0"], 0) / s
  gain = rng.uniform(1.0, 1.4)
  att = gain * np.exp(-alpha * depth_mm) * (1.0 - 0.5 * (np.abs(theta) / geo["half_angle"])**2)
  att = (np.clip(att, 0, 1) * 255 * sector).astype(np.uint8)
  haze = cv2.resize(rng.uniform(0.0, 1.0, (max(4, rows // 30), max(4, cols // 30))).astype(
      np.float32), (cols, rows), interpolation=cv2.INTER_CUBIC)
  haze = np.clip(haze * rng.uniform(10.0, 24.0) * np.exp(-depth_mm / rng.uniform(25.0, 45.0)), 0, 255)
  haze = (haze * sector).astype(np.uint8)
  gamma_c = rng.uniform(0.7, 0.85)
  comp_lut = (255.0 * (np.arange(256) / 255.0)**gamma_c).astype(np.uint8)
  duration_s = num_frames * frame_time_ms / 1000.0
  overlay, text, ecg_box = _overlay(rng, patient, geo, rows, cols, sector, phase_at, duration_s,
                                    plan.label, frame_time_ms)
  sig_lat, sig_ax = max(0.6, 1.3 * s), max(0.4, 0.6 * s)

  # Shapes in pixels, fixed point.
  regions = [(cls, _fixed(to_px(poly))) for cls, poly in scene.regions]
  lines = [(_fixed(to_px(pl)), max(1, int(round(th * s))), inten, name)
           for pl, th, inten, name in scene.lines]
  discs = [(_fixed(to_px(c)), max(1, int(round(rad * s * (1 << _SHIFT)))), inten, name)
           for c, rad, inten, name in scene.discs]
  peri = [(_fixed(to_px(pl)), max(1, int(round(th * s)))) for pl, th in scene.pericardium]
  hull_pts = to_px(scene.periph).astype(np.float32) if scene.hull else None
  near_poly = _fixed(_arc_poly(geo, geo["r0"] - 2, geo["r0"] + truth["near_field_mm"] * s))
  shift_y = np.round(1.5 * s * (1.0 - anatomy.lv_volume_fraction(phase))).astype(int)

  base = (sector * anatomy.FAN).astype(np.uint8)
  if plan.liver is not None:
    _draw_liver(base, plan.liver, geo, truth["near_field_mm"])
  lab = np.empty_like(base)
  extra = np.empty_like(base)
  frames = np.empty((num_frames, rows, cols), np.uint8)
  masks = np.empty((num_frames, rows, cols), np.uint8)
  for i in range(num_frames):
    np.copyto(lab, base)
    if hull_pts is not None:
      hull = cv2.convexHull(hull_pts[i])
      cv2.fillPoly(lab, [_fixed(hull[:, 0])], anatomy.HEART, cv2.LINE_8, _SHIFT)
    for pts, th in peri:
      cv2.polylines(lab, [pts[i]], False, anatomy.PERICARDIUM, th, cv2.LINE_8, _SHIFT)
    for cls, pts in regions:
      cv2.fillPoly(lab, [pts[i]], cls, cv2.LINE_8, _SHIFT)
    cv2.fillPoly(lab, [near_poly], anatomy.NEAR_FIELD, cv2.LINE_8, _SHIFT)
    cv2.bitwise_and(lab, fan255, dst=lab)
    echo = cv2.LUT(lab, echo_lut)
    bits = cv2.LUT(lab, bit_lut)
    extra.fill(0)
    for pts, th, inten, name in lines:
      cv2.polylines(echo, [pts[i]], False, inten, th, cv2.LINE_AA, _SHIFT)
      if name:
        cv2.polylines(extra, [pts[i]], False, _BIT[name], th, cv2.LINE_8, _SHIFT)
    for c, rad, inten, name in discs:
      cv2.circle(echo, tuple(c[i]), rad, inten, -1, cv2.LINE_AA, _SHIFT)
      if name:
        cv2.circle(extra, tuple(c[i]), rad, _BIT[name], -1, cv2.LINE_8, _SHIFT)
    cv2.bitwise_or(bits, extra, dst=bits)
    cv2.bitwise_and(bits, fan255, dst=masks[i])
    cv2.bitwise_and(echo, fan255, dst=echo)
    cv2.max(echo, near_tex, dst=echo)
    echo = cv2.GaussianBlur(echo, (0, 0), sigmaX=sig_lat, sigmaY=sig_ax)
    dy = pad + shift_y[i]
    echo = cv2.multiply(echo, speckle[dy:dy + rows, pad:pad + cols], scale=1.0 / 100.0)
    echo = cv2.multiply(echo, att, scale=1.0 / 255.0)
    cv2.add(echo, haze, dst=echo)
    out = cv2.LUT(echo, comp_lut)
    cv2.max(out, overlay, dst=frames[i])
    if ecg_box is not None:
      x = int(ecg_box[0] + (ecg_box[1] - ecg_box[0]) * times[i] / duration_s)
      cv2.line(frames[i], (x, ecg_box[2]), (x, ecg_box[3]), 255, 1)

  overlay_all = overlay > 0
  if ecg_box is not None:
    overlay_all[ecg_box[2]:ecg_box[3] + 1, ecg_box[0]:ecg_box[1] + 1] = True
  vol = truth["esv"] + (truth["edv"] - truth["esv"]) * anatomy.lv_volume_fraction(phase)
  geo.update(frame_time_ms=frame_time_ms, gamma_deg=math.degrees(gamma))
  return RenderedVideo(frames=frames, masks=masks.astype(np.uint16), sector=sector, text=text,
                       overlay=overlay_all, geometry=geo, lv_volume=vol, phase=phase,
                       view=view, kind=plan.kind)


def render_video(patient: dict[str, Any], rng: np.random.Generator, view: str = "A4C",
                 rows: int = 480, cols: int = 640, num_frames: int = 66,
                 frame_time_ms: float = 33.3, kind: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Renders one video: frames uint8 (F, rows, cols) and region masks uint16 (F, rows, cols)."""
  video = render_study(patient, rng, view, rows, cols, num_frames, frame_time_ms, kind)
  return video.frames, video.masks
