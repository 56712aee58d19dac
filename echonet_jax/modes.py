"""What each ``launch.py --mode`` does: thin glue from a config and paths to the library."""

from __future__ import annotations

import os
from typing import Any
from typing import Sequence

import jax
import ml_collections

from echonet_jax import models
from echonet_jax import tasks as tasks_lib
from echonet_jax import writers
from echonet_jax.data import cache
from echonet_jax.data import prepare as data
from echonet_jax.data import settings
from echonet_jax.data import video
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import inference
from echonet_jax.evaluation import predict as predict_lib
from echonet_jax.evaluation import reports as evaluate_lib
from echonet_jax.evaluation import results_table
from echonet_jax.experiments import sweep as sweep_lib
from echonet_jax.interpret import run as interpret
from echonet_jax.models import MIN_INPUT_SIZE
from echonet_jax.training import restore
from echonet_jax.training import train as trainer
from echonet_jax.training import workdir as workdir_lib

_LOSSES = {"classification": ("xent", "focal"), "regression": ("mse", "huber")}


# What a number must be: (integer?, minimum, strict?), i.e. an integer or not, >= minimum or > it.
_COUNT = (True, 1, False)  # an integer >= 1
_COUNT_OR_0 = (True, 0, False)  # an integer >= 0
_NON_NEGATIVE = (False, 0, False)  # a number >= 0
_POSITIVE = (False, 0, True)  # a number > 0
# section -> {key: rule}: counts and sizes that must be positive (or >= 0).
_AT_LEAST = {
    "train": {
        "batch_size": _COUNT,
        "steps": _COUNT,
        "log_every": _COUNT,
        "eval_every": _COUNT,
        "checkpoint_every": _COUNT,
        "keep_checkpoints": _COUNT,
        "workers": _COUNT_OR_0,
        "prefetch": _COUNT_OR_0,
        "eval_videos_per_batch": _COUNT,
    },
    "optim": {
        "lr": _POSITIVE,
        "weight_decay": _NON_NEGATIVE,
        "warmup_steps": _COUNT_OR_0,
        "final_lr_frac": _NON_NEGATIVE,
    },
    "eval": {"n_boot": _COUNT_OR_0},
    "aug": {"rotation_deg": _NON_NEGATIVE, "brightness": _NON_NEGATIVE},
    "saliency": {
        "num_videos": _COUNT_OR_0,
        "num_samples": _COUNT,
        "noise_frac": _NON_NEGATIVE,
        "ig_steps": _COUNT,
        "chunk_size": _COUNT_OR_0,
        "frames_per_batch": _COUNT_OR_0,
        "patch": _COUNT_OR_0,
        "stride": _COUNT_OR_0,
        "fps": _POSITIVE,
    },
}
_DATA_KEYS = (
    "num_frames",
    "interval_ms",
    "image_size",
    "default_fps",
    "test_frac",
    "val_frac",
    "preprocess_workers",
)


def _check_at_least(config: ml_collections.ConfigDict) -> None:
  for section, keys in _AT_LEAST.items():
    for key, (integer, minimum, strict) in keys.items():
      if section not in config or key not in config[section]:
        continue
      name, value = f"{section}.{key}", config[section][key]
      settings.check_number(name, value, integer)
      if value < minimum or (strict and value == minimum):
        raise ConfigError(f"{name}={value!r}; must be {'>' if strict else '>='} {minimum}")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError with one clear line for a config that cannot run (before any work)."""
  names = tuple(config.get("tasks") or ()) or (config.task,)
  for name in names:
    if name not in tasks_lib.TASKS:
      raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(tasks_lib.TASK_NAMES)}")
  for kind, allowed in _LOSSES.items():
    if config.loss[kind] not in allowed:
      raise ConfigError(f"loss.{kind}={config.loss[kind]!r}; use one of {allowed}")
  if config.optim.schedule not in ("constant", "cosine"):
    raise ConfigError(f"optim.schedule={config.optim.schedule!r}; use 'constant' or 'cosine'")
  settings.check_settings(
      {k: config.data[k] for k in _DATA_KEYS if k in config.data}, label=lambda k: f"data.{k}"
  )
  size = video.resolve_image_size(config.data)
  if models.is_clip_model(config.model.get("name", models.DEFAULT_MODEL)):
    inference.clip_spec(config)  # the cache must be able to serve the clips
  elif size < MIN_INPUT_SIZE:
    shown = f"{config.data.image_size}" + (" (native)" if not config.data.image_size else "")
    raise ConfigError(f"data.image_size={shown}; the network needs >= {MIN_INPUT_SIZE} px")
  if config.data.channels not in (1, 3):
    raise ConfigError(f"data.channels={config.data.channels}; use 1 (grayscale) or 3")
  if not 0.0 <= config.data.get("view_min_confidence", 0.0) <= 1.0:
    raise ConfigError(f"data.view_min_confidence={config.data.view_min_confidence}; use 0..1")
  _check_at_least(config)
  if config.optim.final_lr_frac > 1:
    raise ConfigError(f"optim.final_lr_frac={config.optim.final_lr_frac!r}; must be <= 1")


def resolve_image_size(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Replaces ``data.image_size = 0`` by the source's native size (in place; returns ``config``).

  299 px for DICOMs and the phantom, 112 px for EchoNet-Dynamic (see data/video.py). Runs before
  anything reads the size, so the saved config and the cache carry the real number.
  """
  if not config.data.image_size:
    config.data.image_size = video.resolve_image_size(config.data)
  return config


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains (resuming if possible), then evaluates the best checkpoint on ``config.eval.split``
  and logs those metrics to TensorBoard and metrics.jsonl. Holds the workdir's lock throughout."""
  validate_config(config)
  resolve_image_size(config)
  with workdir_lib.lock_for_this_process(workdir):
    last = trainer.train_and_evaluate(config, workdir)
    if config.train.evaluate_at_end:
      if jax.process_count() == 1:
        results = evaluate(config, workdir, config.eval.split)
        log_eval_metrics(config, workdir, config.eval.split, results)
      else:
        print("multi-host run: evaluate with --mode=evaluate on one host")
  return last


def log_eval_metrics(
    config: ml_collections.ConfigDict, workdir: str, split: str, results: dict[str, Any]
) -> dict[str, float]:
  """Writes ``evaluate``'s headline values as ``<split>/<task>/<metric>`` (and the checkpoint step
  they come from) to metrics.jsonl and TensorBoard at the last training step, with the config as
  TensorBoard hparams. Returns what was written."""
  values: dict[str, float] = {}
  for name, report in results.items():
    for row in report.get("metrics", []):
      if isinstance(row.get("value"), (int, float)):
        values[f"{split}/{name}/{row['metric']}"] = float(row["value"])
    if report.get("checkpoint_step") is not None:
      values[f"{split}/checkpoint_step"] = float(report["checkpoint_step"])
  writer = writers.MetricWriter(workdir)
  try:
    writer.write(config.train.steps, values)
    writer.write_hparams(config.train.steps, config.to_dict(), values)
  finally:
    writer.close()
  return values


def matching_config(
    config: ml_collections.ConfigDict | None, workdir: str
) -> ml_collections.ConfigDict:
  """The config an evaluate / predict / saliency run uses on ``workdir``: ``config`` when given
  (its task must be the workdir's), else the workdir's saved config."""
  saved = restore.load_config(workdir)
  if config is None:
    return saved
  given = tuple(config.get("tasks") or ()) or (config.task,)
  held = tuple(saved.get("tasks") or ()) or (saved.task,)
  if given != held:
    raise ConfigError(
        f"--config is for {'+'.join(given)} but {workdir} holds a {'+'.join(held)} model; "
        "leave out --config to use the workdir's own"
    )
  return config


def sweep(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]] | None:
  """Trains the lr × weight-decay grid of ``config.sweep`` (or this job's members of it); when the
  grid is complete, writes WORKDIR/sweep/ and promotes the best member (see docs/sweep.md)."""
  validate_config(config)
  resolve_image_size(config)
  return sweep_lib.run(config, workdir)


def sweep_summary(workdir: str) -> list[dict[str, Any]]:
  """Merges a sweep's finished members into WORKDIR/sweep/ and promotes the best one."""
  return sweep_lib.summarize(workdir)


def preprocess(config: ml_collections.ConfigDict) -> str:
  """Builds (or finds) the cache of ``config``'s data source and returns its folder."""
  validate_config(config)
  resolve_image_size(config)
  cache_dir = data.prepare_cache(config, load_view_predictor=restore.load_view_predictor)
  print(cache_dir)
  return cache_dir


def _single_process(mode: str) -> None:
  if jax.process_count() > 1:
    raise ConfigError(f"--mode={mode} runs on one host; start it without --coordinator_address")


def _eval_dir(workdir: str, split: str, name: str, multitask: bool) -> str:
  return (
      os.path.join(workdir, "eval", split, name)
      if multitask
      else os.path.join(workdir, "eval", split)
  )


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str) -> dict[str, Any]:
  """Best checkpoint → per-frame outputs on ``split`` → WORKDIR/eval/<split>/ reports.

  For binary tasks the F1 threshold is chosen on the validation split (evaluated first when
  ``split`` is not "val"). Returns {task: metrics dict}.
  """

  _single_process("evaluate")
  trained = restore.load(workdir)
  saved = trained.config
  print(f"evaluate: checkpoint step {trained.step} of {workdir}")
  cache_dir = data.prepare_cache(saved, load_view_predictor=restore.load_view_predictor)
  meta = cache.read_meta(cache_dir)
  stats = meta.get("label_stats", {})
  predict_fn = inference.batched_predict_fn(trained.eval_fn, trained.state, trained.mesh)
  multitask = len(trained.names) > 1
  n_boot = config.eval.n_boot if config is not None else saved.eval.n_boot
  splits = [split] if split == "val" else ["val", split]
  results: dict[str, Any] = {}
  for current in splits:
    try:
      pred = inference.predict_split(predict_fn, saved, trained.names, cache_dir, current)
    except ConfigError as e:
      if current == split:
        raise
      print(f"skipping {current}: {e}")
      continue
    for name in trained.names:
      task = tasks_lib.get_task(name)
      threshold, source = None, None
      if task.is_binary and current != "val":
        val_json = os.path.join(_eval_dir(workdir, "val", name, multitask), "metrics.json")
        try:
          threshold, source = evaluate_lib.read_threshold(val_json), "val"
        except (OSError, ValueError):  # no val video, or no positive in val: choose on this split
          threshold, source = None, None
      out = evaluate_lib.write_eval(
          _eval_dir(workdir, current, name, multitask),
          task,
          pred["video_id"],
          pred["patient_id"],
          pred["labels"][name],
          pred["frame_outputs"][name],
          train_mean=stats.get(name, {}).get("mean"),
          threshold=threshold,
          threshold_source=source,
          n_boot=n_boot,
          seed=saved.seed,
          split=current,
          max_frames=pred["frame_outputs"][name].shape[1],
          checkpoint_step=trained.step,
          quality=pred["quality"],
          data_source=meta.get("source"),
      )
      if current == split:
        results[name] = out
        out.setdefault("checkpoint_step", trained.step)
  table = results_table.results_table([workdir], split=split, n_boot=n_boot)
  provenance = sweep_lib.describe_promotion(workdir)  # a model promoted from --mode=sweep
  if provenance:
    table = f"{provenance}\n\n{table}"
  with open(os.path.join(workdir, "eval", split, "results.md"), "w") as f:
    f.write(table + "\n")
  print(table)
  return results


def predict(
    config: ml_collections.ConfigDict | None,
    workdirs: Sequence[str],
    inputs: Sequence[str],
    output: str | None,
) -> predict_lib.BatchResult:
  """Runs trained task models on new DICOM or AVI files; writes one CSV row per file (predictions,
  or the input's error) and returns the CSV path and counts (see evaluation/predict.py)."""
  del config  # each model brings its own saved config
  _single_process("predict")
  if not workdirs:
    raise ConfigError("predict needs --models (trained workdirs) or --workdir")
  if not inputs:
    raise ConfigError("predict needs --input: DICOM or AVI files, or folders")
  return predict_lib.predict_files([restore.load(w) for w in workdirs], inputs, output)


def saliency(
    config: ml_collections.ConfigDict | None,
    workdir: str,
    split: str | None,
    inputs: Sequence[str] = (),
) -> dict[str, Any]:
  """Saliency maps, occlusion and localisation scores → WORKDIR/saliency/ (see interpret/run.py).

  Explains ``config.saliency.num_videos`` videos of ``split`` (none when ``split`` is empty) and the
  DICOM or AVI ``inputs``; returns the content of WORKDIR/saliency/scores.json.
  """
  _single_process("saliency")
  return interpret.run(config, workdir, split, inputs)
