"""Synthetic patients: demographics, cardiac geometry and the noisy labels a report would carry.

``sample_patient`` draws one adult. Its ``labels`` are what a labels CSV holds (with measurement noise);
its ``truth`` holds the noise-free values and the hidden geometry the renderer draws (millimetres,
millilitres). The physiology is deliberately textbook-like so that what a model learns here resembles
what it must learn on real echoes:

* height by sex and age; BMI log-normal, rising slightly with age; weight = BMI * height^2;
* EF is a mixture of normal (~60 %) and reduced (18-50 %) function; the LV dilates as EF falls
  (EDV index +1.6 mL/m^2 per EF point below 52 %), so EF and EDV correlate (about -0.6);
* EDV = EDV index * BSA (Mosteller), ESV = EDV * (1 - EF);
* LA volume index rises with age, low EF and wall thickness, plus a valve-disease/AF tail;
* wall thickness rises with male sex, age, BMI and a hypertension component;
* chest-wall (near-field) thickness rises with BMI and weight;
* leads are more likely with age and low EF (about 10 % overall).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from echonet_jax import tasks

LAE_THRESHOLD_ML_M2 = 48.0  # severe LA enlargement: LA volume index above this (ASE).
LVH_THRESHOLD_MM = 12.0  # LV hypertrophy: septal/posterior wall thickness above this.
EF_LABEL_NOISE = 2.0  # SD of the reported EF around the true EF, in EF points.
EDV_LABEL_NOISE = 0.06  # log-SD of the reported EDV around the true EDV.

# Fraction of each label's variance the pixels of one video can explain (R^2 of the best predictor
# from the rendered, image-visible quantities; AUC for binary tasks), from
# ``estimate_explainable_variance(num=40000, seed=0)``. A test re-estimates it.
EXPLAINABLE_VARIANCE: dict[str, dict[str, float]] = {
    "pacemaker_leads": {"r2": 0.81, "auc": 0.92},
    "severe_lae": {"r2": 0.46, "auc": 0.96},
    "lvh": {"r2": 0.46, "auc": 0.94},
    "sex": {"r2": 0.65, "auc": 0.96},
    "esv": {"r2": 0.98},
    "edv": {"r2": 0.96},
    "ef": {"r2": 0.98},
    "age": {"r2": 0.70},
    "weight": {"r2": 0.88},
    "height": {"r2": 0.59},
}


def _bsa(height_m: float, weight_kg: float) -> float:
  """Body-surface area (Mosteller), m^2."""
  return math.sqrt(height_m * 100.0 * weight_kg / 3600.0)


def sample_patient(rng: np.random.Generator) -> dict[str, Any]:
  """Draws one synthetic adult.

  Returns a dict with ``labels`` (task name -> float, the values a labels CSV carries, with noise)
  and ``truth`` (noise-free labels and the hidden geometry used by the renderer).
  """
  male = bool(rng.random() < 0.55)
  age = float(np.clip(rng.normal(60.0, 15.0), 18.0, 92.0))
  height = rng.normal(1.76, 0.07) if male else rng.normal(1.62, 0.065)
  height = float(np.clip(height - 0.002 * max(0.0, age - 50.0), 1.45, 2.05))
  bmi = float(np.clip(27.0 * math.exp(rng.normal(0.0, 0.18)) + 0.03 * (age - 50.0), 16.0, 55.0))
  weight = bmi * height**2
  bsa = _bsa(height, weight)

  # Systolic function and LV size.
  if rng.random() < 0.7:
    ef = rng.normal(60.0, 5.5)
  else:
    ef = rng.uniform(18.0, 50.0)
  ef = float(np.clip(ef, 18.0, 76.0))
  edv_index = rng.normal(50.0 + 7.0 * male, 8.0) + 1.6 * max(0.0, 52.0 - ef)
  edv = float(np.clip(edv_index, 30.0, 160.0) * bsa)
  esv = edv * (1.0 - ef / 100.0)

  # Walls, atria, valves.
  hypertension = rng.random() < 0.25
  wall = (
      8.4
      + 1.0 * male
      + 0.035 * (age - 50.0)
      + 0.07 * (bmi - 27.0)
      + (rng.exponential(2.5) if hypertension else 0.0)
      + rng.normal(0.0, 0.8)
  )
  wall = float(np.clip(wall, 6.0, 20.0))
  lavi = (
      26.0
      + 0.12 * (age - 50.0)
      + 0.45 * max(0.0, 50.0 - ef)
      + 1.5 * (wall - 9.0)
      + (rng.exponential(18.0) if rng.random() < 0.12 else 0.0)
      + rng.normal(0.0, 6.0)
  )
  lavi = float(np.clip(lavi, 12.0, 120.0))
  heart_scale = float(math.sqrt(bsa / 1.9) * math.exp(rng.normal(0.0, 0.05)))
  valve_brightness = float(np.clip(0.25 + 0.6 * (age - 18.0) / 74.0 + rng.normal(0.0, 0.12), 0, 1))
  annular_calcification = bool(age + rng.normal(0.0, 8.0) > 72.0)
  septum_ias_mm = float(np.clip(4.0 + 0.05 * (age - 40.0) + rng.normal(0.0, 1.2), 3.0, 12.0))

  # Chest wall: the near-field signal of weight and BMI.
  near_field_mm = float(
      np.clip(10.0 + 0.85 * (bmi - 20.0) + 0.10 * (weight - 70.0) + rng.normal(0.0, 2.0), 6.0, 45.0)
  )
  breast_band = bool(rng.random() < (0.05 if male else 0.7))

  lead_logit = -2.55 + 0.035 * (age - 60.0) + 0.05 * max(0.0, 45.0 - ef)
  lead = bool(rng.random() < 1.0 / (1.0 + math.exp(-lead_logit)))
  lead_visible = lead and bool(rng.random() < 0.9)
  heart_rate = float(np.clip(rng.normal(72.0, 12.0) + 0.2 * max(0.0, 50.0 - ef), 48.0, 115.0))

  # Reported labels: measurement noise around the truth.
  ef_label = float(np.clip(ef + rng.normal(0.0, EF_LABEL_NOISE), 10.0, 85.0))
  edv_label = edv * math.exp(rng.normal(0.0, EDV_LABEL_NOISE))
  wall_measured = wall + rng.normal(0.0, 1.2)
  lavi_measured = lavi * math.exp(rng.normal(0.0, 0.15))
  lead_label = lead if rng.random() >= 0.01 else not lead
  labels = {
      "pacemaker_leads": float(lead_label),
      "severe_lae": float(lavi_measured > LAE_THRESHOLD_ML_M2),
      "lvh": float(wall_measured > LVH_THRESHOLD_MM),
      "sex": float(male),
      "esv": round(edv_label * (1.0 - ef_label / 100.0), 1),
      "edv": round(edv_label, 1),
      "ef": round(ef_label, 1),
      "age": float(math.floor(age)),
      "weight": round(weight + rng.normal(0.0, 1.5), 1),
      "height": round(height + rng.normal(0.0, 0.01), 2),
  }
  truth = {
      "male": male,
      "age": age,
      "height": height,
      "weight": weight,
      "bmi": bmi,
      "bsa": bsa,
      "ef": ef,
      "edv": edv,
      "esv": esv,
      "wall_mm": wall,
      "lavi": lavi,
      "la_volume": lavi * bsa,
      "heart_scale": heart_scale,
      "valve_brightness": valve_brightness,
      "annular_calcification": annular_calcification,
      "septum_ias_mm": septum_ias_mm,
      "near_field_mm": near_field_mm,
      "breast_band": breast_band,
      "lead": lead,
      "lead_visible": lead_visible,
      "heart_rate": heart_rate,
      "lv_length_scale": float(math.exp(rng.normal(0.0, 0.04))),
      "rv_scale": float(math.exp(rng.normal(0.0, 0.08))),
      # (amplitude, phase, phase) of the LA and then the RA outline's harmonics: not round.
      "atrial_shape": (
          float(rng.uniform(0.03, 0.08)),
          float(rng.uniform(0, 2 * math.pi)),
          float(rng.uniform(0, 2 * math.pi)),
          float(rng.uniform(0.03, 0.08)),
          float(rng.uniform(0, 2 * math.pi)),
          float(rng.uniform(0, 2 * math.pi)),
      ),
  }
  return {"labels": labels, "truth": truth, "identity": _identity(rng, male, age)}


_FIRST = {
    True: (
        "JOHN",
        "DAVID",
        "MICHAEL",
        "ROBERT",
        "JAMES",
        "CARLOS",
        "WEI",
        "AHMED",
        "PETER",
        "LUCAS",
        "OMAR",
        "HIROSHI",
    ),
    False: (
        "MARY",
        "ANNA",
        "LINDA",
        "SUSAN",
        "MARIA",
        "FATIMA",
        "MEI",
        "EMMA",
        "SARAH",
        "JULIA",
        "AYA",
        "NORA",
    ),
}
_LAST = (
    "SMITH",
    "GARCIA",
    "NGUYEN",
    "MUELLER",
    "ROSSI",
    "KIM",
    "SILVA",
    "COHEN",
    "OKAFOR",
    "JOHANSSON",
    "PATEL",
    "TANAKA",
    "MARTIN",
    "LOPEZ",
    "NOVAK",
    "DUBOIS",
)
_INSTITUTIONS = (
    "PHANTOM GENERAL HOSPITAL",
    "SYNTHETIC HEART CENTER",
    "NOWHERE MEDICAL",
    "TEST VALLEY CLINIC",
)


def _identity(rng: np.random.Generator, male: bool, age: float) -> dict[str, str]:
  """Fake patient identity for the DICOM tags and the burned-in text (never a label)."""
  first = _FIRST[male][int(rng.integers(len(_FIRST[male])))]
  last = _LAST[int(rng.integers(len(_LAST)))]
  study_day = int(rng.integers(0, 9 * 365))  # 2015-01-01 + days
  study = np.datetime64("2015-01-01") + np.timedelta64(study_day, "D")
  birth = study - np.timedelta64(int(age * 365.25), "D")
  hour, minute = int(rng.integers(7, 18)), int(rng.integers(0, 60))
  ymd = str(study).replace("-", "")
  return {
      "patient_name": f"{last}^{first}",
      "display_name": f"{first} {last}",
      "patient_id": f"{int(rng.integers(10**7, 10**8))}",
      "accession": f"A{int(rng.integers(10**8, 10**9))}",
      "institution": _INSTITUTIONS[int(rng.integers(len(_INSTITUTIONS)))],
      "birth_date": str(birth).replace("-", ""),
      "study_date": ymd,
      "study_time": f"{hour:02d}{minute:02d}00",
      "display_date": f"{study} {hour:02d}:{minute:02d}",
      "sex": "M" if male else "F",
  }


def sample_depth_mm(rng: np.random.Generator, truth: dict[str, Any]) -> float:
  """The imaging depth a sonographer picks: random, but deep enough for the whole heart."""
  needed = (
      truth["near_field_mm"]
      + 60.0
      + 42.0 * (truth["edv"] / 120.0) ** 0.15 * truth["heart_scale"]
      + 46.0 * (truth["la_volume"] / 55.0) ** (1 / 3)
  )
  return float(min(200.0, max(rng.uniform(150.0, 180.0), needed)))


def image_features(truth: dict[str, Any], depth_mm: float) -> np.ndarray:
  """What one video's pixels show of a patient (sizes in pixels of a 400-px-deep fan)."""
  s = 400.0 / depth_mm
  return np.array(
      [
          math.log(truth["near_field_mm"] * s),
          float(truth["breast_band"]),
          math.log(truth["edv"] * s**3),
          math.log(truth["esv"] * s**3),
          truth["ef"],
          math.log(truth["wall_mm"] * s),
          math.log(truth["la_volume"] * s**3),
          math.log(truth["heart_scale"] * truth["rv_scale"] * s),
          math.log(truth["heart_scale"] * s),
          truth["valve_brightness"],
          float(truth["annular_calcification"]),
          math.log(truth["septum_ias_mm"] * s),
          float(truth["lead_visible"]),
          math.log(truth["edv"] ** (0.15) * truth["lv_length_scale"] * s),
          math.log(s),
      ]
  )


def _auc(score: np.ndarray, label: np.ndarray) -> float:
  order = np.argsort(score, kind="stable")
  ranks = np.empty(len(score))
  ranks[order] = np.arange(1, len(score) + 1)
  pos = label > 0.5
  n_pos, n_neg = pos.sum(), (~pos).sum()
  return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def estimate_explainable_variance(num: int = 40000, seed: int = 0) -> dict[str, dict[str, float]]:
  """Monte-Carlo estimate of how much of each label the images can explain.

  Fits, on half of ``num`` sampled patients, a least-squares model with quadratic terms on
  :func:`image_features` and reports the held-out R^2 (and AUC for binary tasks). This is a ceiling
  for a model that sees whole videos; a model seeing single frames reaches less (notably for EF).
  """

  rng = np.random.default_rng(seed)
  feats, labels = [], []
  for _ in range(num):
    p = sample_patient(rng)
    feats.append(image_features(p["truth"], sample_depth_mm(rng, p["truth"])))
    labels.append([p["labels"][t] for t in tasks.TASK_NAMES])
  x = np.asarray(feats)
  x = (x - x.mean(0)) / (x.std(0) + 1e-9)
  iu = np.triu_indices(x.shape[1])
  design = np.concatenate(
      [np.ones((num, 1)), x, (x[:, :, None] * x[:, None, :])[:, iu[0], iu[1]]], axis=1
  )
  y = np.asarray(labels)
  half = num // 2
  coef, *_ = np.linalg.lstsq(design[:half], y[:half], rcond=None)
  pred = design[half:] @ coef
  out = {}
  for k, name in enumerate(tasks.TASK_NAMES):
    yt = y[half:, k]
    r2 = 1.0 - np.mean((yt - pred[:, k]) ** 2) / np.var(yt)
    out[name] = {"r2": round(float(r2), 2)}
    if tasks.get_task(name).is_binary:
      out[name]["auc"] = round(_auc(pred[:, k], yt), 2)
  return out
