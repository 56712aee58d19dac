"""The view classes of the phantom, and how each video of a class is cut and placed in the fan.

``VIEW_CLASSES`` are the labels of a view classifier: the standard views the phantom draws
(``anatomy.VIEWS``) and ``other``, the acquisitions a classifier must reject. An ``other`` video
is one of ``OTHER_KINDS``, drawn at random:

* ``foreshortened``: an A4C or A2C cut through a rib space too high, missing the true apex: the LV
  is 20-32 % shorter and correspondingly wider (same volume), so nearly round, its apex deeper;
* ``off_axis``: an A4C, A2C or PLAX tilted 30-60 degrees, shifted 15-30 mm sideways and zoomed in
  (depth x 0.6-0.8), so chambers run off the fan's edge;
* ``subcostal``: the four chambers seen from below through the liver: a 35-60 mm liver band with
  hepatic veins and a bright diaphragm, then the heart lying sideways (RV on top, apex right);
* ``oblique_psax``: a PSAX cut obliquely through the LV: the ring stretched 1.45-1.9x along a
  random direction.

Burned-in view text (outside the fan) shows what the sonographer meant (A4C for a foreshortened
A4C, SUBC for subcostal), as a real scanner would; the label is the class.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from typing import Sequence

import numpy as np

from echonet_jax.phantom import anatomy
from echonet_jax.phantom import shapes

OTHER = "other"
VIEW_CLASSES = anatomy.VIEWS + (OTHER,)
OTHER_KINDS = ("foreshortened", "off_axis", "subcostal", "oblique_psax")
_ORIGINAL = ("A4C", "A2C", "PLAX")  # placed by render.py exactly as before this module existed


@dataclasses.dataclass(frozen=True)
class ViewPlan:
  """How one video of class ``view`` is drawn: which anatomy, cut, rotation and position."""

  view: str  # the class (labels.csv ``view``)
  scene_view: str  # the anatomy drawn (one of anatomy.VIEWS)
  label: str  # burned-in view text
  kind: str = ""  # for ``other``: one of OTHER_KINDS
  lv_length_factor: float = 1.0  # foreshortening: the LV's drawn length x this (same volume)
  scene_options: dict[str, Any] = dataclasses.field(default_factory=dict)
  depth_scale: float = 1.0  # imaging depth x this (< 1 zooms in)
  beta_deg: float = 0.0  # rotation of the anatomy in the fan
  lateral_mm: float = 0.0  # centre of the heart around the LV, right of the fan's axis
  extra_depth_mm: float = 0.0  # gap added above the anatomy
  stretch: tuple[float, float] | None = None  # (factor, direction in degrees) of an oblique cut
  liver: dict[str, Any] | None = None  # subcostal window: thickness_mm, gray, veins

  @property
  def original(self) -> bool:
    return self.view in _ORIGINAL


def resolve_views(views: str | Sequence[str]) -> tuple[str, ...]:
  """Views for a dataset: ``"all"`` (every class), ``"A4C,PSAX"`` or a sequence; A4C required."""
  if isinstance(views, str):
    views = (
        VIEW_CLASSES
        if views.strip().lower() == "all"
        else [v.strip() for v in views.split(",") if v.strip()]
    )
  views = tuple(views)
  bad = [v for v in views if v not in VIEW_CLASSES]
  if bad or not views or "A4C" not in views or len(set(views)) != len(views):
    raise ValueError(
        f"views must include A4C and be distinct among {VIEW_CLASSES} (or 'all'); " f"got {views}"
    )
  return views


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
  return options[int(rng.integers(len(options)))]


def make_plan(rng: np.random.Generator, view: str, kind: str | None = None) -> ViewPlan:
  """Draws how to cut and place a video of class ``view`` (``kind`` forces an ``other`` kind).

  The original three views draw nothing from ``rng``, so their videos stay byte-identical.
  """
  if view not in VIEW_CLASSES:
    raise ValueError(f"unknown view {view!r}; expected one of {VIEW_CLASSES}")
  if kind is not None and (view != OTHER or kind not in OTHER_KINDS):
    raise ValueError(f"kind {kind!r} needs view 'other' and one of {OTHER_KINDS}")
  if view in _ORIGINAL:
    return ViewPlan(view, view, view)
  if view in ("A3C", "A5C"):
    return ViewPlan(
        view, view, view, beta_deg=rng.normal(2.0, 3.0), lateral_mm=rng.normal(0.0, 4.0)
    )
  if view == "PSAX":
    return ViewPlan(view, view, view, **_psax_cut(rng))
  kind = kind or _pick(rng, OTHER_KINDS)
  if kind == "foreshortened":
    base = _pick(rng, ("A4C", "A2C"))
    return ViewPlan(
        OTHER,
        base,
        base,
        kind,
        lv_length_factor=rng.uniform(0.68, 0.8),
        beta_deg=rng.normal(2.0, 5.0),
        lateral_mm=rng.normal(0.0, 5.0),
        extra_depth_mm=rng.uniform(8.0, 20.0),
    )
  if kind == "off_axis":
    base = _pick(rng, ("A4C", "A2C", "PLAX"))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return ViewPlan(
        OTHER,
        base,
        base,
        kind,
        depth_scale=rng.uniform(0.6, 0.8),
        beta_deg=sign * rng.uniform(30.0, 60.0),
        lateral_mm=(1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(15.0, 30.0),
        extra_depth_mm=rng.uniform(0.0, 10.0),
    )
  if kind == "subcostal":
    thickness = rng.uniform(35.0, 60.0)
    veins = [
        (rng.uniform(-0.6, 0.6), rng.uniform(0.3, 0.75), rng.uniform(3.0, 6.0))
        for _ in range(int(rng.integers(1, 4)))
    ]
    return ViewPlan(
        OTHER,
        "A4C",
        "SUBC",
        kind,
        depth_scale=rng.uniform(1.05, 1.2),
        beta_deg=rng.uniform(70.0, 110.0),
        lateral_mm=rng.normal(0.0, 6.0),
        extra_depth_mm=thickness + rng.uniform(-5.0, 5.0),
        liver={"thickness_mm": thickness, "gray": rng.uniform(45.0, 65.0), "veins": veins},
    )
  return ViewPlan(
      OTHER,
      "PSAX",
      "PSAX",
      kind,
      **_psax_cut(rng),
      stretch=(rng.uniform(1.45, 1.9), rng.uniform(0.0, 180.0)),
  )


def _psax_cut(rng: np.random.Generator) -> dict[str, Any]:
  """A PSAX cut's ViewPlan fields, drawn in this order: level, depth, tilt, offset, extra depth."""
  return dict(
      scene_options={"level": _psax_level(rng)},
      depth_scale=rng.uniform(0.75, 0.9),
      beta_deg=rng.normal(0.0, 6.0),
      lateral_mm=rng.normal(0.0, 5.0),
      extra_depth_mm=rng.uniform(0.0, 8.0),
  )


def _psax_level(rng: np.random.Generator) -> str:
  return "mitral" if rng.random() < 0.35 else "papillary"


def scene_truth(plan: ViewPlan, truth: dict[str, Any]) -> dict[str, Any]:
  """The patient's truth as the cut shows it (a foreshortened LV looks shorter)."""
  if plan.lv_length_factor == 1.0:
    return truth
  return dict(truth, lv_length_scale=truth["lv_length_scale"] * plan.lv_length_factor)


def _rot(a: float) -> np.ndarray:
  return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def apply_cut(plan: ViewPlan, scene: shapes.Scene) -> shapes.Scene:
  """Stretches ``scene`` in place for an oblique cut (nothing for other plans); returns it."""
  if plan.stretch is None:
    return scene
  factor, direction = plan.stretch
  a = math.radians(direction)
  m = _rot(a) @ np.diag([factor, 1.0]) @ _rot(-a)
  tf = lambda pts: pts @ m.T
  scene.regions = [(cls, tf(p)) for cls, p in scene.regions]
  scene.lines = [(tf(p), th, inten, name) for p, th, inten, name in scene.lines]
  scene.discs = [(tf(c), r, inten, name) for c, r, inten, name in scene.discs]
  scene.pericardium = [(tf(p), th) for p, th in scene.pericardium]
  if scene.periph is not None:
    scene.periph = tf(scene.periph)
  return scene


def place(plan: ViewPlan, scene: shapes.Scene, depth0_mm: float) -> tuple[float, tuple]:
  """Rotation (radians) and origin (mm) of the scene in the fan (see render.py's ``to_px``).

  The first frame's heart near the LV (within 80 mm of the cavity's centre, which leaves out the
  long vessels of PLAX) is centred ``lateral_mm`` right of the fan's axis, its top
  ``depth0_mm + extra_depth_mm`` below the probe.
  """
  beta = math.radians(plan.beta_deg)
  pts = np.concatenate([poly[0] for _, poly in scene.regions], axis=0) @ _rot(beta).T
  lv = np.concatenate([poly[0] for cls, poly in scene.regions if cls == shapes.LV], axis=0)
  near = pts[np.linalg.norm(pts - lv.mean(0) @ _rot(beta).T, axis=1) < 80.0]
  centre_x = 0.5 * (near[:, 0].min() + near[:, 0].max())
  return beta, (plan.lateral_mm - centre_x, depth0_mm + plan.extra_depth_mm - near[:, 1].min())
