"""Resolves a config's data source to a ready cache folder, building it once when needed.

Sources, in order: ``data.labels_csv`` (DICOMs listed in a labels CSV), ``data.echonet_dynamic_dir``
(the public EchoNet-Dynamic layout), else the synthetic phantom (the embedded default), generated into
``$ECHONET_JAX_CACHE`` (default ``~/.cache/echonet_jax``) on first use.
"""

from __future__ import annotations

import hashlib
import json
import os

from absl import logging
import jax
import numpy as np
import ml_collections
from jax.experimental import multihost_utils

from echonet_jax.data import cache
from echonet_jax.errors import ConfigError


def cache_root() -> str:
  """The folder for generated phantoms and caches (``$ECHONET_JAX_CACHE``)."""
  return os.path.expanduser(os.environ.get("ECHONET_JAX_CACHE", "~/.cache/echonet_jax"))


def _digest(obj) -> str:
  return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def default_cache_dir(config: ml_collections.ConfigDict) -> str:
  """Where the cache for this config's data source and geometry lives when none is configured."""
  d = config.data
  geometry = dict(size=d.image_size, frames=d.num_frames, interval=d.interval_ms,
                  split_seed=d.split_seed, test=d.test_frac, val=d.val_frac, fps=d.default_fps)
  if d.labels_csv:
    key = dict(src=os.path.abspath(d.labels_csv), **geometry)
    if d.get("view_model"):
      key.update(view_model=os.path.abspath(d.view_model), min_conf=d.view_min_confidence)
    return os.path.join(cache_root(), f"cache-{_digest(key)}")
  if d.echonet_dynamic_dir:
    key = dict(src=os.path.abspath(d.echonet_dynamic_dir), **geometry)
    return os.path.join(cache_root(), f"dynamic-{_digest(key)}")
  return os.path.join(phantom_dir(config), f"cache-{_digest(geometry)}")


def phantom_dir(config: ml_collections.ConfigDict) -> str:
  """Where the phantom of this config is generated (keyed by its settings)."""
  p = config.data.phantom.to_dict()
  if p.get("views", "A4C") == "A4C":
    p.pop("views", None)  # A4C-only phantoms keep the folders made before the views option
  return os.path.join(cache_root(), f"phantom-{p['num_studies']}-{_digest(p)}")


def prepare_cache(config: ml_collections.ConfigDict) -> str:
  """Returns a cache folder holding this config's data, building it (on process 0) if missing."""
  d = config.data
  cache_dir = d.cache_dir or default_cache_dir(config)
  failure = None
  if jax.process_index() == 0 and not os.path.exists(os.path.join(cache_dir, cache.META_FILE)):
    if jax.process_count() == 1:
      _build(config, cache_dir)
    else:
      try:
        _build(config, cache_dir)
      except Exception as e:  # pylint: disable=broad-except
        failure = e
  if jax.process_count() > 1:
    # Every process learns whether process 0 built the cache, so none waits on a failed build.
    ok = multihost_utils.broadcast_one_to_all(np.int32(failure is None))
    if failure is not None:
      raise failure
    if not int(ok):
      raise ConfigError(f"{cache_dir}: process 0 failed to build the cache; see its log")
  meta = cache.read_meta(cache_dir)
  if meta.get("image_size") not in (None, d.image_size):
    logging.info("cache %s holds %s px frames; the pipeline resizes to %s px",
                 cache_dir, meta.get("image_size"), d.image_size)
  return cache_dir


def _build(config: ml_collections.ConfigDict, cache_dir: str) -> None:
  # Imported here: the phantom and the DICOM stack are only needed when a cache is built.
  from echonet_jax.data import preprocess  # pylint: disable=g-import-not-at-top

  d = config.data
  common = dict(num_frames=d.num_frames, interval_ms=d.interval_ms, size=d.image_size,
                workers=d.preprocess_workers, seed=d.split_seed, test_frac=d.test_frac,
                val_frac=d.val_frac)
  if d.echonet_dynamic_dir:
    logging.info("importing EchoNet-Dynamic from %s into %s", d.echonet_dynamic_dir, cache_dir)
    summary = preprocess.build_echonet_dynamic_cache(
        d.echonet_dynamic_dir, cache_dir, num_frames=d.num_frames, interval_ms=d.interval_ms,
        size=d.image_size, workers=d.preprocess_workers, default_fps=d.default_fps)
    _check_summary(summary, cache_dir)
    return
  labels_csv, source = d.labels_csv, "labels_csv"
  if not labels_csv:
    source = "phantom"
    from echonet_jax import phantom  # pylint: disable=g-import-not-at-top
    out = phantom_dir(config)
    labels_csv = os.path.join(out, "labels.csv")
    if not os.path.exists(labels_csv):
      p = d.phantom
      logging.info("generating %d phantom studies into %s", p.num_studies, out)
      labels_csv = phantom.generate_dataset(
          out, p.num_studies, p.seed, rows=p.rows, cols=p.cols, frame_time_ms=p.frame_time_ms,
          duration_s=p.duration_s, workers=d.preprocess_workers, views=p.get("views", "A4C"))
  predictor = None
  if d.get("view_model"):  # a trained view model fills blank views (the one higher-stage import)
    from echonet_jax.evaluation import view_model  # pylint: disable=g-import-not-at-top
    predictor = view_model.load_predictor(d.view_model, d.views)
  logging.info("building the cache %s from %s", cache_dir, labels_csv)
  summary = preprocess.build_cache(labels_csv, cache_dir, default_fps=d.default_fps,
                                   source=source, view_predictor=predictor,
                                   view_min_confidence=d.get("view_min_confidence", 0.5), **common)
  _check_summary(summary, cache_dir)


def _check_summary(summary: dict, cache_dir: str) -> None:
  from echonet_jax.data import preprocess  # pylint: disable=g-import-not-at-top
  logging.info("cache %s: %s", cache_dir, preprocess.format_summary(summary))
  if not summary.get("meta", {}).get("splits", {}).get("train"):
    raise ConfigError(f"{cache_dir}: no training videos could be read; see "
                      f"{os.path.join(cache_dir, 'errors.csv')}")
