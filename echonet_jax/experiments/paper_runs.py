"""Runs the paper study's workdirs (skipping finished ones) and reads back what they measured.

Each :class:`~echonet_jax.experiments.paper_plan.Run` is an ordinary workdir under OUT, trained by
``modes.train`` or ``modes.sweep`` (+ ``modes.evaluate``), so a run killed mid-way resumes from its
checkpoint; WORKDIR/paper_run.json marks a finished one. The views part calls experiments/views.py.
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import multiprocessing
import os
import time
from typing import Any
from typing import Sequence


from echonet_jax import modes
from echonet_jax import parallel
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import prepare
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import reports
from echonet_jax.experiments import paper_plan
from echonet_jax.experiments import views as views_lib
from echonet_jax.training import restore

DONE = "paper_run.json"
COMMON = "test_common"  # eval folder of a run scored on the main runs' test videos


def done_record(out: str, run: paper_plan.Run) -> dict[str, Any] | None:
  path = os.path.join(out, run.name, DONE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    record = json.load(f)
  if record.get("scale", run.scale) != run.scale:
    raise ConfigError(
        f"{os.path.join(out, run.name)} was made at scale {record['scale']!r}, not "
        f"{run.scale!r}; use a new --out for another scale"
    )
  return record


def subset_csv(labels_csv: str, path: str, share: int, data: Any) -> str:
  """A copy of ``labels_csv`` keeping 1 in ``share`` training patients and every val/test row,
  each row's split pinned as the full phantom assigns it, paths made absolute."""
  root = os.path.dirname(os.path.abspath(labels_csv))
  with open(labels_csv, newline="") as f:
    rows = list(csv.DictReader(f))
  split = {
      p: labels_lib.patient_split(p, data.split_seed, data.test_frac, data.val_frac)
      for p in sorted({r["patient_id"] for r in rows})
  }
  train = [p for p in sorted(split) if split[p] == "train"]
  kept = set(train[::share]) | {p for p, s in split.items() if s != "train"}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w", newline="") as f:
    w = csv.DictWriter(f, [*rows[0].keys(), "split"])
    w.writeheader()
    for r in rows:
      if r["patient_id"] in kept:
        for key in ("path", "mask_path"):
          if r.get(key):
            r[key] = os.path.join(root, r[key])
        w.writerow({**r, "split": split[r["patient_id"]]})
  os.replace(path + ".tmp", path)
  return path


def prepare_data(runs: Sequence[paper_plan.Run], out: str) -> None:
  """Builds every cache the runs read, one after another (workers must not race to build one)."""
  seen = set()
  for run in runs:
    if run.kind == "views" or done_record(out, run) is not None:
      continue
    config = modes.resolve_image_size(run.config)
    if run.patient_share:
      base = paper_plan.frame_config(paper_plan.get_scale(run.scale), run.tasks[0])
      base.data = config.data.copy_and_resolve_references()
      base.data.labels_csv = ""
      prepare.prepare_cache(base, load_view_predictor=restore.load_view_predictor)
      phantom_csv = os.path.join(prepare.phantom_dir(base), "labels.csv")
      path = os.path.join(out, "data", f"patients_1_in_{run.patient_share}.csv")
      config.data.labels_csv = subset_csv(phantom_csv, path, run.patient_share, config.data)
    key = config.data.to_json_best_effort(sort_keys=True)
    if key not in seen:
      seen.add(key)
      prepare.prepare_cache(config, load_view_predictor=restore.load_view_predictor)


def common_data(run: paper_plan.Run) -> Any:
  """The data settings of the main run of ``run``'s task: where comparisons are scored."""
  data = paper_plan.frame_config(paper_plan.get_scale(run.scale), run.tasks[0]).data
  data.image_size = run.config.data.image_size
  return data


def evaluate_common(workdir: str, data: Any) -> dict[str, Any]:
  """The best checkpoint scored on the test videos of ``data`` -> WORKDIR/eval/test_common/."""
  trained = restore.load(workdir)
  trained.config.data = data
  out_dir = os.path.join(workdir, "eval", COMMON)
  return views_lib.write_first_task_eval(trained, out_dir, "test", checkpoint_step=trained.step)


def run_one(run: paper_plan.Run, out: str, compile_cache: str | None = None) -> dict[str, Any]:
  """Trains and evaluates one run unless it is finished; returns its paper_run.json record."""
  found = done_record(out, run)
  if found is not None:
    return {**found, "skipped": True}
  if compile_cache:
    parallel.use_compilation_cache(compile_cache)
  workdir = os.path.join(out, run.name)
  os.makedirs(workdir, exist_ok=True)
  start = time.perf_counter()
  record: dict[str, Any] = {
      "name": run.name,
      "part": run.part,
      "tasks": list(run.tasks),
      "scale": run.scale,
  }
  if run.kind == "views":
    rows = views_lib.run(
        run.tasks[0], run.extra["arg"], workdir, run.extra["studies"], run.extra["steps"]
    )
    record["arms"] = {r["arm"]: r for r in rows}
  elif run.kind == "sweep":
    modes.sweep(run.config, workdir)
    modes.evaluate(None, workdir, run.config.eval.split)
  else:
    modes.train(run.config, workdir)
  if run.common_eval:
    evaluate_common(workdir, common_data(run))
  record["seconds"] = time.perf_counter() - start
  with open(os.path.join(workdir, DONE + ".tmp"), "w") as f:
    json.dump(record, f, indent=2, default=str)
  os.replace(os.path.join(workdir, DONE + ".tmp"), os.path.join(workdir, DONE))
  return {**record, "skipped": False}


def attempt(run: paper_plan.Run, out: str, compile_cache: str | None = None) -> dict[str, Any]:
  """:func:`run_one`, or a record of why it failed (the other runs and the report go on)."""
  try:
    return run_one(run, out, compile_cache)
  except Exception as e:  # pylint: disable=broad-except  # one failed run must not lose the study
    message = f"{type(e).__name__}: {e}".splitlines()[0]
    print(f"paper: run {run.name} failed: {message}", flush=True)
    return {"name": run.name, "part": run.part, "skipped": False, "error": message}


def execute(
    runs: Sequence[paper_plan.Run], out: str, workers: int = 1, compile_cache: str | None = None
) -> list[dict[str, Any]]:
  """Every run, ``workers`` at a time (spawned processes when > 1); records in ``runs``' order."""
  prepare_data(runs, out)
  if workers <= 1:
    return [attempt(r, out, compile_cache) for r in runs]
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
    # The runs with most heads (multi-task, video) first: they compile longest.
    first = sorted(range(len(runs)), key=lambda i: -len(runs[i].tasks))
    futures = {i: pool.submit(attempt, runs[i], out, compile_cache) for i in first}
    return [futures[i].result() for i in range(len(runs))]


def eval_folder(out: str, run: paper_plan.Run, task: str, split: str = "test") -> str:
  """Where ``run``'s evaluation of ``task`` on ``split`` lies (modes.evaluate's layout)."""
  folder = os.path.join(out, run.name, "eval", split)
  multi = run.kind != "views" and len(tuple(run.config.get("tasks") or ())) > 1
  return os.path.join(folder, task) if multi else folder


def read_eval(folder: str) -> dict[str, Any] | None:
  """An eval folder's metrics.json with the path of its predictions.csv, or None when absent."""
  path = os.path.join(folder, reports.METRICS_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    data = json.load(f)
  data["predictions"] = os.path.join(folder, reports.PREDICTIONS_FILE)
  return data


def collect(runs: Sequence[paper_plan.Run], out: str) -> dict[str, dict[str, Any]]:
  """{run name: {"record": paper_run.json, "evals": {task: metrics (+ predictions path)},
  "common": {task: ...}}} for every finished run."""
  found = {}
  for run in runs:
    record = done_record(out, run)
    if record is None:
      continue
    entry: dict[str, Any] = {"record": record, "evals": {}, "common": {}}
    for task in run.tasks:
      if run.kind == "views":
        for arm in views_lib.ARMS:
          folder = os.path.join(out, run.name, f"{task}_{arm}", "eval", "test_A4C")
          entry["evals"][f"{task}/{arm}"] = read_eval(folder)
        continue
      entry["evals"][task] = read_eval(eval_folder(out, run, task))
      if run.common_eval:
        entry["common"][task] = read_eval(os.path.join(out, run.name, "eval", COMMON))
    found[run.name] = entry
  return found
