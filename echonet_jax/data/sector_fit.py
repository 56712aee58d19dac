"""Robust geometric fits of the scan sector to pixel evidence: a fan or a rectangle.

Pure numpy/cv2 helpers of :func:`echonet_jax.data.sector.find_sector`. A fan (phased and curved arrays,
apex up) is two straight edges meeting at the apex, a far arc and, when truncated, a near arc, both
centred on the apex; a rectangle (linear arrays) is four straight edges. Edges are RANSAC lines
through the evidence's extreme pixel of each row (column); arcs are the radius where most rays cast
from the apex leave (enter) the evidence. Text, icons or an ECG sweep touching the sector are
outliers of these fits. Pixel coordinates are those of pixel centres; fits are corrected for the
half pixel between a boundary pixel's centre and the boundary, so the fitted shape matches the
continuous sector, and :func:`shape_mask` keeps the pixels whose centres lie inside it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# An edge pixel within EDGE_TOLERANCE_PX of a line supports it; a straight edge is supported by at
# least MIN_EDGE_SHARE of the evidence's rows (columns).
EDGE_TOLERANCE_PX = 1.5
MIN_EDGE_SHARE = 0.25
# An arc is the radius where MIN_ARC_SHARE of the rays have a boundary within ARC_TOLERANCE_PX.
ARC_TOLERANCE_PX = 2
MIN_ARC_SHARE = 0.4
# Edges whose slopes (dx/dy) differ by less than this are parallel: no fan, maybe a rectangle,
# whose edges must tilt by less than MAX_RECTANGLE_TILT.
MIN_FAN_OPENING = 0.05
MAX_RECTANGLE_TILT = 0.05
_RANSAC_TRIES = 256
_NUM_RAYS = 128


def _longest_run(index: np.ndarray, inliers: np.ndarray, max_gap: float) -> int:
  """Most inliers in one run of ``index`` (sorted), consecutive inliers <= max_gap apart."""
  at = index[inliers]
  if len(at) == 0:
    return 0
  breaks = np.flatnonzero(np.diff(at) > max_gap)
  return int(np.diff(np.concatenate([[0], breaks + 1, [len(at)]])).max())


def fit_line(y: np.ndarray, x: np.ndarray, rng: np.random.Generator):
  """RANSAC line x = a + b y, refined by least squares: (a, b, inlier mask), or None for too few
  points. Inliers lie within EDGE_TOLERANCE_PX (perpendicular); of the lines with the most, the one
  with the longest unbroken run wins: an edge is one straight run, whereas a slanted line can pick
  up points on both sides of an icon that juts out by a few pixels."""
  if len(y) < 8:
    return None
  y, x = y.astype(np.float64), x.astype(np.float64)
  i, j = rng.integers(0, len(y), (2, _RANSAC_TRIES))
  keep = y[i] != y[j]
  i, j = i[keep], j[keep]
  b = (x[j] - x[i]) / (y[j] - y[i])
  a = x[i] - b * y[i]
  tolerance = EDGE_TOLERANCE_PX * np.sqrt(1 + b * b)[:, None]
  inliers = np.abs(x - a[:, None] - b[:, None] * y) <= tolerance
  top = np.argsort(-inliers.sum(axis=1), kind="stable")[:16]
  max_gap = max(3.0, 0.02 * (y[-1] - y[0]))
  best = inliers[max(top, key=lambda t: _longest_run(y, inliers[t], max_gap))]
  for _ in range(2):
    if best.sum() < 2:  # (y holds distinct rows)
      return None
    b, a = np.polyfit(y[best], x[best], 1)
    best = np.abs(x - a - b * y) <= EDGE_TOLERANCE_PX * math.sqrt(1 + b * b)
  return float(a), float(b), best


def _edges(evidence: np.ndarray, open_area: np.ndarray, rng: np.random.Generator, axis: int):
  """Robust lines along the two extreme evidence pixels of each row (axis 1) or column (axis 0):
  ((a, b) low side, (a, b) high side), coordinate = a + b * index, or None. Extremes where the
  image or region (``open_area``) cuts the evidence say nothing about its edge and are left out."""
  ev, area = (evidence, open_area) if axis == 1 else (evidence.T, open_area.T)
  n = ev.shape[1]
  index = np.flatnonzero(ev.any(axis=1))
  if len(index) < 8:
    return None
  sub = ev[index]
  low = sub.argmax(axis=1)
  high = n - 1 - sub[:, ::-1].argmax(axis=1)
  low_ok = (low > 0) & area[index, np.maximum(low - 1, 0)]
  high_ok = (high < n - 1) & area[index, np.minimum(high + 1, n - 1)]
  span = index[-1] - index[0] + 1
  lines = []
  for coord, ok, half in ((low, low_ok, -0.5), (high, high_ok, 0.5)):
    fit = fit_line(index[ok], coord[ok] + half, rng)
    if fit is None or fit[2].sum() < MIN_EDGE_SHARE * span:  # an edge is a long straight run
      return None
    lines.append(fit[:2])
  return lines[0], lines[1]


def _arc_radius(boundary: np.ndarray, r: np.ndarray, num_rays: int) -> float | None:
  """The radius where the most rays have a ``boundary`` sample (rays x radii bool) within
  ARC_TOLERANCE_PX, refined to their median; None unless MIN_ARC_SHARE of ``num_rays`` do."""
  tol = ARC_TOLERANCE_PX
  near = cv2.dilate(boundary.astype(np.uint8), np.ones((1, 2 * tol + 1), np.uint8))
  support = near.sum(axis=0)
  best = len(r) - 1 - int(np.argmax(support[::-1]))  # the outermost of equals
  if support[best] < MIN_ARC_SHARE * num_rays:
    return None
  lo = max(0, best - tol)
  _, at = np.nonzero(boundary[:, lo : best + tol + 1])
  return float(np.median(r[at + lo]))


def fit_fan(evidence: np.ndarray, open_area: np.ndarray, rng: np.random.Generator) -> dict | None:
  """Fan parameters (apex_x, apex_y, left_deg, right_deg, r_near, r_far; angles from straight
  down, positive to the right) fitting ``evidence``, or None when no fan with its apex up fits."""
  h, w = evidence.shape
  edges = _edges(evidence, open_area, rng, axis=1)
  if edges is None:
    return None
  (a_l, b_l), (a_r, b_r) = edges
  if b_r - b_l < MIN_FAN_OPENING:
    return None
  apex_y = (a_l - a_r) / (b_r - b_l)
  apex_x = a_l + b_l * apex_y
  if apex_y > np.flatnonzero(evidence.any(axis=1))[0] + EDGE_TOLERANCE_PX:
    return None  # the edges meet below the top of the evidence: not a fan with its apex up
  theta_l, theta_r = math.atan(b_l), math.atan(b_r)
  corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
  r_far = np.hypot(corners[:, 0] - apex_x, corners[:, 1] - apex_y).max()
  r_near = max(0.0, -apex_y, apex_x - (w - 1), -apex_x)  # the image is farther than this
  inset = 0.03 * (theta_r - theta_l)
  theta = np.linspace(theta_l + inset, theta_r - inset, _NUM_RAYS)
  r = np.arange(math.floor(r_near), math.ceil(r_far) + 1, dtype=np.float64)
  xi = np.rint(apex_x + np.sin(theta)[:, None] * r).astype(np.int64)
  yi = np.rint(apex_y + np.cos(theta)[:, None] * r).astype(np.int64)
  inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
  inside[inside] = open_area[yi[inside], xi[inside]]
  hit = np.zeros_like(inside)
  hit[inside] = evidence[yi[inside], xi[inside]]
  any_hit = hit.any(axis=1)
  if not any_hit.any():
    return None
  first, last = hit.argmax(axis=1), len(r) - 1 - hit[:, ::-1].argmax(axis=1)
  enter, leave = inside.argmax(axis=1), len(r) - 1 - inside[:, ::-1].argmax(axis=1)
  # Each arc is where most rays enter (leave) the evidence without the image or region cutting it:
  # a run boundary, not the last hit, so that text beyond a gap cannot move the arc.
  starts = np.zeros_like(hit)
  starts[:, 1:] = hit[:, 1:] & ~hit[:, :-1] & inside[:, :-1]
  ends = np.zeros_like(hit)
  ends[:, :-1] = hit[:, :-1] & ~hit[:, 1:] & inside[:, 1:]
  n_hit = int(any_hit.sum())
  inner, outer = _arc_radius(starts, r, n_hit), _arc_radius(ends, r, n_hit)
  # No common radius: an arc the image or region cuts (most rays meet its edge in the evidence) is
  # left to the clip; a dim one (dark far field) takes the radius most rays reach.
  if inner is None:
    cut = (first <= enter + 1)[any_hit].mean() > 0.5
    inner = 0.0 if cut else float(np.quantile(r[first[any_hit]], 0.25))
  if outer is None:
    cut = (last >= leave - 1)[any_hit].mean() > 0.5
    outer = float(r[-1]) + 1 if cut else float(np.quantile(r[last[any_hit]], 0.75))
  inner, outer = max(0.0, inner - 0.5), outer + 0.5
  if outer - inner < 0.2 * max(h, w):
    return None
  return dict(
      apex_x=apex_x,
      apex_y=apex_y,
      left_deg=math.degrees(theta_l),
      right_deg=math.degrees(theta_r),
      r_near=inner,
      r_far=outer,
  )


def fit_rectangle(
    evidence: np.ndarray, open_area: np.ndarray, rng: np.random.Generator
) -> dict | None:
  """Rectangle edges fitting ``evidence``: left/right ``x = a + b y`` and top/bottom
  ``y = a + b x`` as left_a, left_b, right_a, ..., bottom_b; None unless all four are straight
  and nearly axis-aligned."""
  sides, ends = _edges(evidence, open_area, rng, 1), _edges(evidence, open_area, rng, 0)
  if sides is None or ends is None:
    return None
  if max(abs(b) for _, b in sides + ends) > MAX_RECTANGLE_TILT:
    return None
  params = {}
  for name, (a, b) in zip(("left", "right", "top", "bottom"), sides + ends):
    params[name + "_a"], params[name + "_b"] = a, b
  return params


def shape_mask(kind: str, params: dict, shape: tuple[int, int], margin: float = 0.0) -> np.ndarray:
  """(H, W) bool: pixels whose centres lie inside the ``kind`` ("fan" or "rectangle") shape of
  ``params`` shrunk by ``margin`` px."""
  h, w = shape
  y, x = np.ogrid[:h, :w]
  y, x = y.astype(np.float32), x.astype(np.float32)
  if kind == "rectangle":
    p = params
    side = lambda a, b, along, across: (across - a - b * along) / math.hypot(1, b)
    return (
        (side(p["left_a"], p["left_b"], y, x) >= margin)
        & (-side(p["right_a"], p["right_b"], y, x) >= margin)
        & (side(p["top_a"], p["top_b"], x, y) >= margin)
        & (-side(p["bottom_a"], p["bottom_b"], x, y) >= margin)
    )
  dx, dy = x - np.float32(params["apex_x"]), y - np.float32(params["apex_y"])
  left, right = math.radians(params["left_deg"]), math.radians(params["right_deg"])
  r2 = dx * dx + dy * dy
  near = max(0.0, params["r_near"] + margin) if params["r_near"] > 0 else 0.0
  far = max(0.0, params["r_far"] - margin)
  return (
      (r2 >= near * near)
      & (r2 <= far * far)
      & (dx * math.cos(left) - dy * math.sin(left) >= margin)
      & (dy * math.sin(right) - dx * math.cos(right) >= margin)
  )
