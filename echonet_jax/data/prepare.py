"""Resolves a config's data source to a ready cache folder that matches its inputs.

Sources, in order: ``data.labels_csv`` (DICOMs listed in a labels CSV), ``data.echonet_dynamic_dir``
(the public EchoNet-Dynamic layout), else the synthetic phantom (the embedded default), generated into
``$ECHONET_JAX_CACHE`` (default ``~/.cache/echonet_jax``) on first use.

The folder is ``data.cache_dir``, else one under ``$ECHONET_JAX_CACHE`` named by the source's
location and the :class:`~echonet_jax.data.spec.CacheSpec`. Whether it can be used is decided by
*content*: every launch reads the labels CSV (or FileList.csv), and when its rows (or the spec)
differ from what the cache holds, the cache is updated in place before training (changed and added
rows written, removed rows dropped, unchanged videos reused; see :mod:`echonet_jax.data.build`). A
model never trains on labels the CSV no longer says.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Callable
from typing import Sequence

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from echonet_jax import phantom
from echonet_jax.data import build
from echonet_jax.data import cache
from echonet_jax.data import echonet_dynamic
from echonet_jax.data import ingest
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import shard_plan
from echonet_jax.data import views
from echonet_jax.data.spec import CacheSpec
from echonet_jax.errors import CacheError
from echonet_jax.errors import ConfigError

# (view-model workdir, views a run selects) -> a ``data.views`` predictor.
ViewPredictorLoader = Callable[[str, Sequence[str]], views.Predictor]


def cache_root() -> str:
  """The folder for generated phantoms and caches (``$ECHONET_JAX_CACHE``)."""
  return os.path.expanduser(os.environ.get("ECHONET_JAX_CACHE", "~/.cache/echonet_jax"))


def _digest(obj) -> str:
  return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def default_cache_dir(config: ml_collections.ConfigDict) -> str:
  """Where the cache for this config's data source and CacheSpec lives when none is configured.

  The name is a hash of the source's location and the spec; the content is checked on every
  launch (:func:`prepare_cache`), so an edited CSV updates this folder rather than a stale copy.
  """
  d = config.data
  spec = CacheSpec.from_config(config).identity()
  if d.labels_csv:
    key = dict(src=os.path.abspath(d.labels_csv), **spec)
    if d.get("view_model"):  # views filled by a model: a cache of its own
      key.update(view_model=os.path.abspath(d.view_model))
    return os.path.join(cache_root(), f"cache-{_digest(key)}")
  if d.echonet_dynamic_dir:
    key = dict(src=os.path.abspath(d.echonet_dynamic_dir), **spec)
    return os.path.join(cache_root(), f"dynamic-{_digest(key)}")
  return os.path.join(phantom_dir(config), f"cache-{_digest(spec)}")


def phantom_dir(config: ml_collections.ConfigDict) -> str:
  """Where the phantom of this config is generated (keyed by its settings)."""
  p = config.data.phantom.to_dict()
  if p.get("views", "A4C") == "A4C":
    p.pop("views", None)  # A4C-only phantoms keep the folders made before the views option
  return os.path.join(cache_root(), f"phantom-{p['num_studies']}-{_digest(p)}")


def prepare_cache(
    config: ml_collections.ConfigDict, *, load_view_predictor: ViewPredictorLoader | None = None
) -> str:
  """Returns a cache folder holding this config's data as its inputs say now.

  With ``config.data.view_model`` set, ``load_view_predictor(workdir, views)`` (e.g.
  ``training.restore.load_view_predictor``) loads the model that fills blank views; the data stage
  does not load trained models itself.

  On process 0, builds the cache, or updates it when the labels rows or the spec changed; other
  processes wait for the result. Raises CacheError/LabelsError (one line) when that is impossible.
  """
  d = config.data
  cache_dir = d.cache_dir or default_cache_dir(config)
  failure = None
  if jax.process_index() == 0:
    try:
      _ensure_current(config, cache_dir, load_view_predictor)
    except Exception as e:  # pylint: disable=broad-except
      if jax.process_count() == 1:
        raise
      failure = e
  if jax.process_count() > 1:
    # Every process learns whether process 0 built the cache, so none waits on a failed build.
    ok = multihost_utils.broadcast_one_to_all(np.int32(failure is None))
    if failure is not None:
      raise failure
    if not int(ok):
      raise ConfigError(f"{cache_dir}: process 0 failed to build the cache; see its log")
  cache.read_meta(cache_dir)
  return cache_dir


def _source_rows(
    config: ml_collections.ConfigDict, spec: CacheSpec
) -> tuple[list[labels_lib.VideoRow], str]:
  """The rows of the config's source (generating the phantom on first use) and the file's name."""
  d = config.data
  ranges = d.get("label_ranges", "")
  if spec.source == "echonet_dynamic":
    return echonet_dynamic.read_filelist(d.echonet_dynamic_dir), os.path.join(
        d.echonet_dynamic_dir, echonet_dynamic.FILELIST
    )
  labels_csv = d.labels_csv
  if spec.source == "phantom":
    # Imported here: the phantom renderer is only needed when its dataset is generated.
    out = phantom_dir(config)
    labels_csv = os.path.join(out, "labels.csv")
    if not os.path.exists(labels_csv):
      p = d.phantom
      logging.info("generating %d phantom studies into %s", p.num_studies, out)
      labels_csv = phantom.generate_dataset(
          out,
          p.num_studies,
          p.seed,
          rows=p.rows,
          cols=p.cols,
          frame_time_ms=p.frame_time_ms,
          duration_s=p.duration_s,
          workers=d.preprocess_workers,
          views=p.get("views", "A4C"),
      )
  return labels_lib.read_labels(labels_csv, ranges), labels_csv


def _ensure_current(
    config: ml_collections.ConfigDict,
    cache_dir: str,
    load_view_predictor: ViewPredictorLoader | None,
) -> None:
  spec = CacheSpec.from_config(config)
  rows, rows_source = _source_rows(config, spec)
  d = config.data
  if d.get("view_model"):  # a trained view model fills blank views
    if load_view_predictor is None:
      raise ConfigError(
          f"config.data.view_model={d.view_model!r} needs a view-model loader: "
          "prepare_cache(config, load_view_predictor=restore.load_view_predictor)"
      )
    rows = views.fill_views(rows, load_view_predictor(d.view_model, spec.views), progress=True)
  if shard_plan.is_current(cache_dir, rows, spec):
    return
  exists = os.path.exists(os.path.join(cache_dir, cache.META_FILE))
  logging.info("%s the cache %s", "updating" if exists else "building", cache_dir)
  try:
    summary = build.build_from_rows(
        rows,
        cache_dir,
        spec,
        workers=config.data.preprocess_workers,
        progress=True,
        rows_source=rows_source,
        view_min_confidence=d.get("view_min_confidence", 0.5),
    )
  except OSError as e:  # a read-only or full cache folder: refuse in one line, never train stale
    raise CacheError(
        f"{e.filename or cache_dir}: cannot {'update' if exists else 'build'} the "
        f"cache ({e.strerror or type(e).__name__}); its inputs "
        f"{'changed' if exists else 'are new'}, so it cannot be used as it is"
    ) from None
  logging.info("cache %s:\n%s", cache_dir, ingest.format_summary(summary))
  if not summary["meta"]["complete"]:
    raise ConfigError(f"{cache_dir}: the cache is incomplete after the build; run again")
  if not summary["meta"]["splits"].get("train"):
    raise ConfigError(
        f"{cache_dir}: no training videos could be read; see "
        f"{os.path.join(cache_dir, build.ERRORS_FILE)}"
    )
