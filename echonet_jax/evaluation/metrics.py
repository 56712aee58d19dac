"""Evaluation metrics: ROC AUC, F1, R², MAE and the mean-prediction baseline (the patient bootstrap
CIs over them are :mod:`echonet_jax.evaluation.bootstrap`).

Pure numpy, no I/O. Definitions match scikit-learn's on the same data (``roc_auc_score``, ``roc_curve``
with ``drop_intermediate=False``, ``f1_score``, ``r2_score``, ``mean_absolute_error``). Undefined
metrics are NaN, never an exception: AUC with one-class labels (as scikit-learn >= 1.6) and R² with
constant labels (scikit-learn returns 0.0 or -inf); :func:`auc_undefined_reason` and
:func:`r2_undefined_reason` say why.

Every metric takes an optional ``weights`` argument: shape ``(n,)`` gives one value, shape ``(B, n)``
gives ``B`` values at once. Integer weights are multiplicities, so a bootstrap resample is a weight row
(how many times each video was drawn) and ``bootstrap.bootstrap_ci`` evaluates all resamples in a few
vectorised numpy calls instead of a Python loop.

Honest intervals: ``bootstrap.bootstrap_interval`` counts the resamples whose metric is defined and reports
the interval as unavailable (NaN bounds and a note; "n/a" in text, null in JSON) with fewer than
``MIN_CI_PATIENTS`` patients, fewer than ``MIN_VALID_FRACTION`` of the resamples defined, or a zero
width. It never presents the point estimate as a CI.
"""

from __future__ import annotations

import numpy as np


def _as_weights(weights, n: int) -> tuple[np.ndarray, bool]:
  """Returns weights as a (B, n) float array and whether the caller asked for a batch."""
  if weights is None:
    return np.ones((1, n)), False
  w = np.asarray(weights, dtype=np.float64)
  if w.ndim == 1:
    w, batched = w[None], False
  elif w.ndim == 2:
    batched = True
  else:
    raise ValueError(f"weights must have shape (n,) or (B, n); got {w.shape}")
  if w.shape[1] != n:
    raise ValueError(f"weights cover {w.shape[1]} items but there are {n}")
  if np.any(w < 0):
    raise ValueError("weights must be non-negative")
  return w, batched


def _out(values: np.ndarray, batched: bool):
  return values if batched else float(values[0])


def _binary_labels(labels) -> np.ndarray:
  y = np.asarray(labels)
  if y.ndim != 1:
    raise ValueError(f"labels must be 1-D; got shape {y.shape}")
  if y.dtype != bool:
    yf = y.astype(np.float64)
    if np.any(np.isnan(yf)):
      raise ValueError("binary labels contain NaN; drop them first with drop_missing_labels")
    if not np.all((yf == 0) | (yf == 1)):
      bad = np.unique(yf[(yf != 0) & (yf != 1)])[:5]
      raise ValueError(f"binary labels must be 0 or 1; found {bad.tolist()}")
    y = yf == 1
  return y


def _vector(x, n: int, name: str) -> np.ndarray:
  v = np.asarray(x, dtype=np.float64)
  if v.shape != (n,):
    raise ValueError(f"{name} must have shape ({n},) to match the labels; got {v.shape}")
  return v


def _regression_inputs(y, yhat, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
  """Float64 labels (n,) and predictions (n,), checked; weights and batching as :func:`_as_weights`."""
  y = np.asarray(y, dtype=np.float64)
  if y.ndim != 1:
    raise ValueError(f"labels must be 1-D; got shape {y.shape}")
  yhat = _vector(yhat, y.size, "predictions")
  w, batched = _as_weights(weights, y.size)
  return y, yhat, w, batched


def drop_missing_labels(labels, *arrays) -> tuple[np.ndarray, tuple[np.ndarray, ...], int]:
  """Drops items whose label is NaN from ``labels`` and every array in ``arrays`` (aligned on axis 0).

  Returns ``(labels, arrays, n_dropped)``.
  """
  y = np.asarray(labels, dtype=np.float64)
  keep = ~np.isnan(y)
  kept = []
  for a in arrays:
    a = np.asarray(a)
    if a.shape[:1] != y.shape:
      raise ValueError(f"array of shape {a.shape} is not aligned with {y.shape[0]} labels")
    kept.append(a[keep])
  return y[keep], tuple(kept), int(np.sum(~keep))


def auc_undefined_reason(labels) -> str | None:
  """Why ROC AUC is undefined for these labels (all one class), or None when it is defined."""
  y = _binary_labels(labels)
  if y.size == 0:
    return "no labelled videos"
  if y.all():
    return f"all {y.size} labels are positive"
  if not y.any():
    return f"all {y.size} labels are negative"
  return None


def r2_undefined_reason(y) -> str | None:
  """Why R² is undefined for these labels (constant or empty), or None when it is defined."""
  y = np.asarray(y, dtype=np.float64)
  if y.size == 0:
    return "no labelled videos"
  if np.all(y == y[0]):
    return f"all {y.size} labels equal {y[0]:g}"
  return None


def roc_auc(labels, scores, weights=None):
  """Area under the ROC curve (ties count one half); NaN when the labels are all one class.

  Computed as the (weighted) Mann–Whitney statistic from one sort of the scores, so a batch of weight
  rows costs one cumulative sum.
  """
  y = _binary_labels(labels)
  s = _vector(scores, y.size, "scores")
  w, batched = _as_weights(weights, y.size)
  order = np.argsort(s, kind="stable")
  s, y, w = s[order], y[order], w[:, order]
  starts_here = np.r_[True, s[1:] != s[:-1]] if s.size else np.zeros(0, bool)
  group = np.cumsum(starts_here) - 1
  starts = np.flatnonzero(starts_here)
  ends = np.r_[starts[1:], s.size]
  neg_w = w * ~y
  cum_neg = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(neg_w, axis=1)], axis=1)
  pos = np.flatnonzero(y)
  below = cum_neg[:, starts[group[pos]]]  # negative weight strictly below each positive's score
  tied = cum_neg[:, ends[group[pos]]] - below  # negative weight at the same score
  numerator = np.sum(w[:, pos] * (below + 0.5 * tied), axis=1)
  denominator = np.sum(w[:, pos], axis=1) * np.sum(neg_w, axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    auc = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)
  return _out(auc, batched)


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Returns ``(fpr, tpr, thresholds)``: one point per distinct score, plus (0, 0) at threshold +inf.

  Same as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``. A rate is NaN when its class is
  absent.
  """
  y = _binary_labels(labels)
  s = _vector(scores, y.size, "scores")
  order = np.argsort(-s, kind="stable")
  s, y = s[order], y[order]
  last_of_value = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, bool)
  tp = np.r_[0, np.cumsum(y)[last_of_value]]
  fp = np.r_[0, np.cumsum(~y)[last_of_value]]
  thresholds = np.r_[np.inf, s[last_of_value]]
  with np.errstate(invalid="ignore", divide="ignore"):
    tpr = tp / tp[-1] if tp[-1] > 0 else np.full(tp.shape, np.nan)
    fpr = fp / fp[-1] if fp[-1] > 0 else np.full(fp.shape, np.nan)
  return fpr, tpr, thresholds


def f1(labels, probs, threshold: float, weights=None):
  """F1 of the positive class when ``probs >= threshold`` is predicted positive.

  0 when there are no positive labels and no positive predictions (scikit-learn's ``zero_division``
  default).
  """
  y = _binary_labels(labels)
  p = _vector(probs, y.size, "probs")
  w, batched = _as_weights(weights, y.size)
  predicted = p >= threshold
  tp = np.sum(w * (y & predicted), axis=1)
  fp = np.sum(w * (~y & predicted), axis=1)
  fn = np.sum(w * (y & ~predicted), axis=1)
  denominator = 2 * tp + fp + fn
  score = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)
  return _out(score, batched)


def best_f1_threshold(labels, probs) -> tuple[float, float]:
  """Returns ``(threshold, f1)`` maximising F1 over all cut points of ``probs``.

  The threshold sits halfway between the lowest probability predicted positive and the next lower one
  (or equals the lowest probability when every video is predicted positive), so that it is not tied to a
  score seen on this split. Ties in F1 go to the higher threshold. ``(nan, nan)`` when there are no
  positive labels.
  """
  y = _binary_labels(labels)
  p = _vector(probs, y.size, "probs")
  if not y.any():
    return float("nan"), float("nan")
  order = np.argsort(-p, kind="stable")
  p, y = p[order], y[order]
  last_of_value = np.r_[p[1:] != p[:-1], True]
  tp = np.cumsum(y)[last_of_value]
  predicted_positive = np.flatnonzero(last_of_value) + 1
  scores = 2 * tp / (predicted_positive + y.sum())
  best = int(np.argmax(scores))
  values = p[last_of_value]
  threshold = values[best]
  if best + 1 < values.size:
    midpoint = 0.5 * (values[best] + values[best + 1])
    if values[best + 1] < midpoint <= values[best]:
      threshold = midpoint
  return float(threshold), float(scores[best])


def r2(y, yhat, weights=None):
  """Coefficient of determination, 1 − SS_res / SS_tot; NaN when the labels are constant."""
  y, yhat, w, batched = _regression_inputs(y, yhat, weights)
  total = np.sum(w, axis=1, keepdims=True)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = np.sum(w * y, axis=1, keepdims=True) / total
    ss_tot = np.sum(w * (y - mean) ** 2, axis=1)
    ss_res = np.sum(w * (y - yhat) ** 2, axis=1)
    # Relative tolerance: a constant label column has SS_tot of rounding-error size, not exactly 0.
    defined = ss_tot > 1e-12 * np.sum(w * y**2, axis=1)
    value = np.where(defined, 1 - ss_res / np.where(defined, ss_tot, 1), np.nan)
  return _out(value, batched)


def mae(y, yhat, weights=None):
  """Mean absolute error."""
  y, yhat, w, batched = _regression_inputs(y, yhat, weights)
  with np.errstate(invalid="ignore", divide="ignore"):
    value = np.sum(w * np.abs(y - yhat), axis=1) / np.sum(w, axis=1)
  return _out(value, batched)


def mean_baseline_mae(y, train_mean: float, weights=None):
  """MAE of always predicting ``train_mean``, the mean label of the TRAINING split."""
  y = np.asarray(y, dtype=np.float64)
  return mae(y, np.full(y.shape, float(train_mean)), weights=weights)


# --- Categorical tasks: labels are class indices 0..K-1, scores are class probabilities (n, K). ---


def _class_labels(labels, probs) -> tuple[np.ndarray, np.ndarray]:
  y = np.asarray(labels, dtype=np.float64)
  p = np.asarray(probs, dtype=np.float64)
  if y.ndim != 1 or p.ndim != 2 or p.shape[0] != y.size:
    raise ValueError(
        f"categorical metrics need labels (n,) and probabilities (n, K); got "
        f"{y.shape} and {p.shape}"
    )
  if np.any(np.isnan(y)):
    raise ValueError("class labels contain NaN; drop them first with drop_missing_labels")
  if np.any((y != np.round(y)) | (y < 0) | (y >= p.shape[1])):
    raise ValueError(f"class labels must be integers in 0..{p.shape[1] - 1}")
  return y.astype(np.int64), p


def accuracy(labels, probs, weights=None):
  """Fraction of items whose most probable class is the label."""
  y, p = _class_labels(labels, probs)
  w, batched = _as_weights(weights, y.size)
  correct = np.argmax(p, axis=1) == y
  with np.errstate(invalid="ignore", divide="ignore"):
    value = np.sum(w * correct, axis=1) / np.sum(w, axis=1)
  return _out(value, batched)


def confusion_matrix(labels, probs, weights=None) -> np.ndarray:
  """(K, K) counts: row = true class, column = predicted (most probable) class."""
  y, p = _class_labels(labels, probs)
  w = np.ones(y.size) if weights is None else _vector(weights, y.size, "weights")
  k = p.shape[1]
  out = np.zeros((k, k))
  np.add.at(out, (y, np.argmax(p, axis=1)), w)
  return out


def macro_f1(labels, probs, weights=None):
  """Unweighted mean over classes of the one-vs-rest F1 of the argmax prediction.

  Classes absent from both labels and predictions are left out of the mean (scikit-learn's
  ``f1_score(average="macro", labels=present)``); NaN when there is no item.
  """
  y, p = _class_labels(labels, probs)
  w, batched = _as_weights(weights, y.size)
  predicted = np.argmax(p, axis=1)
  scores, present = [], []
  for k in range(p.shape[1]):
    is_k, pred_k = y == k, predicted == k
    tp = np.sum(w * (is_k & pred_k), axis=1)
    denominator = (
        2 * tp + np.sum(w * (~is_k & pred_k), axis=1) + np.sum(w * (is_k & ~pred_k), axis=1)
    )
    scores.append(np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0))
    present.append(denominator > 0)
  scores, present = np.stack(scores, 1), np.stack(present, 1)
  with np.errstate(invalid="ignore", divide="ignore"):
    value = np.sum(scores * present, axis=1) / np.sum(present, axis=1)
  return _out(value, batched)


def one_vs_rest_auc(labels, probs, class_index: int, weights=None):
  """ROC AUC of class ``class_index`` against all others, scored by its probability."""
  y, p = _class_labels(labels, probs)
  return roc_auc(y == class_index, p[:, class_index], weights)
