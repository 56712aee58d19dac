"""What the scanner burns into the image outside the fan: text, depth marks and the ECG strip."""

from __future__ import annotations

import cv2
import numpy as np

from echonet_jax.phantom import fan

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _ecg(phase_at, duration_s, x0, x1, y_mid, amp):
  """The ECG trace over the whole video (x pixels), from the cardiac phase."""
  xs = np.arange(int(x0), int(x1))
  t = (xs - x0) / (x1 - x0) * duration_s
  ph = np.mod(phase_at(t) + 0.5, 1.0) - 0.5
  wave = (
      1.0 * np.exp(-0.5 * (ph / 0.008) ** 2)
      - 0.12 * np.exp(-0.5 * ((ph + 0.016) / 0.006) ** 2)
      - 0.25 * np.exp(-0.5 * ((ph - 0.018) / 0.007) ** 2)
      + 0.28 * np.exp(-0.5 * ((ph - 0.28) / 0.045) ** 2)
      + 0.12 * np.exp(-0.5 * ((ph + 0.12) / 0.025) ** 2)
  )
  return np.stack([xs, y_mid - amp * wave], -1)


def overlay(rng, patient, geo, rows, cols, sector, phase_at, duration_s, view, frame_time_ms):
  """Burned-in text (name, date, settings), depth marks and ECG strip; never inside the fan."""
  ident = patient.get("identity", {})
  scale = max(0.28, 0.42 * rows / 480.0)
  line_h = max(9, int(round(30 * scale)))
  text = np.zeros((rows, cols), np.uint8)
  left = [
      ident.get("display_name", "ANONYMOUS"),
      ident.get("display_date", ""),
      ident.get("institution", ""),
  ]
  for k, s in enumerate(left):
    cv2.putText(text, s, (int(0.012 * cols), (k + 1) * line_h), _FONT, scale, 220, 1, cv2.LINE_AA)
  settings = [
      view,
      f"FR {1000.0 / frame_time_ms:.0f}Hz",
      f"{geo['depth_mm'] / 10:.0f}cm",
      f"G {int(rng.integers(40, 70))}%",
      f"C {int(rng.integers(40, 60))}",
      f"P {rng.choice(['Low', 'Med'])}",
      "HGen",
  ]
  for k, s in enumerate(settings):
    cv2.putText(text, s, (int(0.87 * cols), (k + 1) * line_h), _FONT, scale, 220, 1, cv2.LINE_AA)
  other = np.zeros_like(text)
  s_mm = geo["px_per_mm"]
  for cm in range(1, int(geo["depth_mm"] // 10) + 1):
    y = geo["apex_y"] + geo["r0"] + cm * 10 * s_mm
    cv2.circle(other, (int(0.83 * cols), int(y)), max(1, rows // 240), 200, -1)
  cv2.circle(
      other, (int(geo["apex_x"] + 0.09 * cols), int(0.06 * rows)), max(2, rows // 100), 180, -1
  )
  x0, x1 = 0.12 * cols, 0.88 * cols
  y_mid = 0.955 * rows
  trace = _ecg(phase_at, duration_s, x0, x1, y_mid, 0.04 * rows)
  cv2.polylines(other, [fan.fixed(trace)], False, 190, 1, cv2.LINE_AA, fan.SHIFT)
  keep_out = cv2.dilate(sector.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
  text[keep_out] = 0
  other[keep_out] = 0
  layer = np.maximum(text, other)
  ecg_box = (int(x0), int(x1), int(0.91 * rows), min(rows - 1, int(0.995 * rows)))
  if keep_out[ecg_box[2] : ecg_box[3] + 1, ecg_box[0] : ecg_box[1]].any():
    ecg_box = None  # too small an image: no room for the cursor below the fan
  return layer, text > 0, ecg_box
