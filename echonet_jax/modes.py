"""What each ``launch.py --mode`` does: thin glue from a config and paths to the library."""

from __future__ import annotations

import csv
import os
from typing import Any, Sequence

import ml_collections

from echonet_jax import errors
from echonet_jax import tasks as tasks_lib
from echonet_jax.errors import ConfigError

_LOSSES = {"classification": ("xent", "focal"), "regression": ("mse", "huber")}


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError with one clear line for a config that cannot run."""
  names = tuple(config.get("tasks") or ()) or (config.task,)
  for name in names:
    if name not in tasks_lib.TASKS:
      raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(tasks_lib.TASK_NAMES)}")
  for kind, allowed in _LOSSES.items():
    if config.loss[kind] not in allowed:
      raise ConfigError(f"loss.{kind}={config.loss[kind]!r}; use one of {allowed}")
  if config.optim.schedule not in ("constant", "cosine"):
    raise ConfigError(f"optim.schedule={config.optim.schedule!r}; use 'constant' or 'cosine'")
  from echonet_jax.models import MIN_INPUT_SIZE  # pylint: disable=g-import-not-at-top
  if config.data.image_size < MIN_INPUT_SIZE:
    raise ConfigError(f"data.image_size={config.data.image_size}; the network needs >= "
                      f"{MIN_INPUT_SIZE} px")
  if config.data.channels not in (1, 3):
    raise ConfigError(f"data.channels={config.data.channels}; use 1 (grayscale) or 3")
  if config.train.batch_size <= 0 or config.train.steps <= 0:
    raise ConfigError("train.batch_size and train.steps must be positive")


def train(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains (resuming if possible), then evaluates the best checkpoint on ``config.eval.split``
  and logs those metrics to TensorBoard and metrics.jsonl. Holds the workdir's lock throughout."""
  validate_config(config)
  import jax  # pylint: disable=g-import-not-at-top
  from echonet_jax.training import train as trainer  # pylint: disable=g-import-not-at-top
  from echonet_jax.training import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  with workdir_lib.lock_for_this_process(workdir):
    last = trainer.train_and_evaluate(config, workdir)
    if config.train.evaluate_at_end:
      if jax.process_count() == 1:
        results = evaluate(config, workdir, config.eval.split)
        log_eval_metrics(config, workdir, config.eval.split, results)
      else:
        print("multi-host run: evaluate with --mode=evaluate on one host")
  return last


def log_eval_metrics(config: ml_collections.ConfigDict, workdir: str, split: str,
                     results: dict[str, Any]) -> dict[str, float]:
  """Writes ``evaluate``'s headline values as ``<split>/<task>/<metric>`` (and the checkpoint step
  they come from) to metrics.jsonl and TensorBoard at the last training step, with the config as
  TensorBoard hparams. Returns what was written."""
  from echonet_jax.training import writers  # pylint: disable=g-import-not-at-top
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


def matching_config(config: ml_collections.ConfigDict | None, workdir: str
                    ) -> ml_collections.ConfigDict:
  """The config an evaluate / predict / saliency run uses on ``workdir``: ``config`` when given
  (its task must be the workdir's), else the workdir's saved config."""
  from echonet_jax.training import restore  # pylint: disable=g-import-not-at-top
  saved = restore.load_config(workdir)
  if config is None:
    return saved
  given = tuple(config.get("tasks") or ()) or (config.task,)
  held = tuple(saved.get("tasks") or ()) or (saved.task,)
  if given != held:
    raise ConfigError(
        f"--config is for {'+'.join(given)} but {workdir} holds a {'+'.join(held)} model; "
        "leave out --config to use the workdir's own")
  return config


def preprocess(config: ml_collections.ConfigDict) -> str:
  """Builds (or finds) the cache of ``config``'s data source and returns its folder."""
  validate_config(config)
  from echonet_jax.data import prepare as data  # pylint: disable=g-import-not-at-top
  cache_dir = data.prepare_cache(config)
  print(cache_dir)
  return cache_dir


def _single_process(mode: str) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1:
    raise ConfigError(f"--mode={mode} runs on one host; start it without --coordinator_address")


def _eval_dir(workdir: str, split: str, name: str, multitask: bool) -> str:
  return os.path.join(workdir, "eval", split, name) if multitask else os.path.join(
      workdir, "eval", split)


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str) -> dict[str, Any]:
  """Best checkpoint → per-frame outputs on ``split`` → WORKDIR/eval/<split>/ reports.

  For binary tasks the F1 threshold is chosen on the validation split (evaluated first when
  ``split`` is not "val"). Returns {task: metrics dict}.
  """
  from echonet_jax.data import cache  # pylint: disable=g-import-not-at-top
  from echonet_jax.data import prepare as data  # pylint: disable=g-import-not-at-top
  from echonet_jax.evaluation import reports as evaluate_lib  # pylint: disable=g-import-not-at-top
  from echonet_jax.evaluation import inference  # pylint: disable=g-import-not-at-top
  from echonet_jax.evaluation import results_table as report  # pylint: disable=g-import-not-at-top
  from echonet_jax.training import restore  # pylint: disable=g-import-not-at-top

  _single_process("evaluate")
  trained = restore.load(workdir)
  saved = trained.config
  cache_dir = data.prepare_cache(saved)
  stats = cache.read_meta(cache_dir).get("label_stats", {})
  multitask = len(trained.names) > 1
  n_boot = config.eval.n_boot if config is not None else saved.eval.n_boot
  splits = [split] if split == "val" else ["val", split]
  results: dict[str, Any] = {}
  for current in splits:
    try:
      pred = inference.predict_split(trained, cache_dir, current)
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
          _eval_dir(workdir, current, name, multitask), task, pred["video_id"],
          pred["patient_id"], pred["labels"][name], pred["frame_outputs"][name],
          train_mean=stats.get(name, {}).get("mean"), threshold=threshold,
          threshold_source=source, n_boot=n_boot, seed=saved.seed, split=current,
          max_frames=pred["frame_outputs"][name].shape[1])
      if current == split:
        results[name] = out
        out.setdefault("checkpoint_step", trained.step)
  table = report.results_table([workdir], split=split, n_boot=n_boot)
  with open(os.path.join(workdir, "eval", split, "results.md"), "w") as f:
    f.write(table + "\n")
  print(table)
  return results


def predict(config: ml_collections.ConfigDict | None, workdirs: Sequence[str],
            inputs: Sequence[str], output: str | None) -> str:
  """Runs trained task models on new DICOM files; writes one CSV row per file.

  Each model reads the file through the ingestion path at its own image size. A file that cannot be
  read gets a row with ``error_type`` and ``error`` and no predictions. Returns the CSV path.
  """
  from echonet_jax.data import dicom  # pylint: disable=g-import-not-at-top
  from echonet_jax.evaluation import inference  # pylint: disable=g-import-not-at-top
  from echonet_jax.data import pipeline as input_pipeline  # pylint: disable=g-import-not-at-top
  from echonet_jax.training import restore  # pylint: disable=g-import-not-at-top

  del config  # each model brings its own saved config
  _single_process("predict")
  if not workdirs:
    raise ConfigError("predict needs --models (trained workdirs) or --workdir")
  if not inputs:
    raise ConfigError("predict needs --input: DICOM files or folders")
  models = [restore.load(w) for w in workdirs]
  files = dicom.list_files(inputs)
  rows = []
  for path in files:
    row: dict[str, Any] = {"path": path, "error_type": "", "error": ""}
    try:
      clips = {}
      for trained in models:
        d = trained.config.data
        key = (d.image_size, d.num_frames, d.interval_ms)
        if key not in clips:
          clips[key] = dicom.read_echo(path, num_frames=d.num_frames, interval_ms=d.interval_ms,
                                       size=d.image_size, default_fps=d.default_fps)
        clip = clips[key]
        out = inference.predict_images(trained, input_pipeline.to_images(clip.frames, d.channels))
        for name in trained.names:
          row[name] = float(out[name].mean())  # the video's prediction: the mean of its frames
        row["frame_time_ms"] = clip.frame_time_ms
        row["fps_assumed"] = clip.fps_assumed
    except errors.EchoReadError as e:
      row.update(error_type=type(e).__name__, error=e.reason)
    rows.append(row)
  output = output or os.path.join(workdirs[0], "predictions.csv")
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  names = [n for m in models for n in m.names]
  columns = ["path", *names, "frame_time_ms", "fps_assumed", "error_type", "error"]
  with open(output, "w", newline="") as f:
    writer = csv.DictWriter(f, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
  failed = sum(1 for r in rows if r["error_type"])
  print(f"wrote {output}: {len(rows) - failed} files predicted, {failed} failed")
  return output


def saliency(config: ml_collections.ConfigDict | None, workdir: str, split: str | None,
             inputs: Sequence[str] = ()) -> dict[str, Any]:
  """Saliency maps, occlusion and localisation scores → WORKDIR/saliency/ (see interpret.py).

  Explains ``config.saliency.num_videos`` videos of ``split`` (none when ``split`` is empty) and the
  DICOM ``inputs``; returns the content of WORKDIR/saliency/scores.json.
  """
  _single_process("saliency")
  from echonet_jax.interpret import run as interpret  # pylint: disable=g-import-not-at-top
  return interpret.run(config, workdir, split, inputs)
