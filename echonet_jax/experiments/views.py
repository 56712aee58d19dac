"""The paper's view experiment on the phantom: one task trained on every view against A4C only.

  python -m echonet_jax.experiments.views --task weight --arg cpu --out runs/views [--steps N]

Both arms read the same multi-view phantom (``phantom.views="all"``) and cache, and train the same
steps; ``all`` keeps every view (``data.views=()``), ``a4c`` only the apical 4-chamber videos. Each
arm is evaluated on the A4C test videos (the paper's test input) and, for ``all``, on every test
video. Prints one JSON line per arm and a markdown table (also written to OUT/views.md).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any
from typing import Sequence

import ml_collections

from configs import default
from echonet_jax import modes
from echonet_jax import tasks as tasks_lib
from echonet_jax.data import cache
from echonet_jax.data import prepare
from echonet_jax.data import selection
from echonet_jax.evaluation import inference
from echonet_jax.evaluation import reports
from echonet_jax.training import restore

ARMS = {"all": (), "a4c": ("A4C",)}


def arm_config(
    task: str, arg: str, views: Sequence[str], studies: int, steps: int = 0
) -> ml_collections.ConfigDict:
  """``task``'s config on the multi-view phantom, training and evaluating ``views`` (() = all)."""
  config = default.get_config(arg, task=task)
  config.data.phantom.update(views="all", num_studies=studies)
  if steps:
    default.schedule(config, steps, steps // 2)
  config.data.views = tuple(views)
  config.train.evaluate_at_end = False
  return config


def write_first_task_eval(
    trained: restore.TrainedModel, out_dir: str, split: str, **write_eval_kwargs: Any
) -> dict[str, Any]:
  """Scores ``trained`` on ``split`` of its config's data (cache built if missing); writes its first
  task's eval into ``out_dir`` (:func:`reports.write_eval`, also given ``write_eval_kwargs``)."""
  cache_dir = prepare.prepare_cache(trained.config, load_view_predictor=restore.load_view_predictor)
  stats = cache.read_meta(cache_dir).get("label_stats", {})
  predict_fn = inference.batched_predict_fn(trained.eval_fn, trained.state, trained.mesh)
  pred = inference.predict_split(predict_fn, trained.config, trained.names, cache_dir, split)
  name = trained.names[0]
  return reports.write_eval(
      out_dir,
      tasks_lib.get_task(name),
      pred["video_id"],
      pred["patient_id"],
      pred["labels"][name],
      pred["frame_outputs"][name],
      train_mean=stats.get(name, {}).get("mean"),
      n_boot=trained.config.eval.n_boot,
      seed=trained.config.seed,
      split=split,
      **write_eval_kwargs,
  )


def evaluate_on(workdir: str, views: Sequence[str], split: str = "test") -> dict[str, Any]:
  """The best checkpoint's headline metric on the ``views`` videos of ``split``."""
  trained = restore.load(workdir)
  trained.config.data.views = tuple(views)
  tag = "_".join(views) or "all"
  out = write_first_task_eval(trained, os.path.join(workdir, "eval", f"{split}_{tag}"), split)
  return {row["metric"]: row for row in out["metrics"]}


def train_figures(workdir: str) -> dict[str, float]:
  """Mean images/s over the logged steps (metrics.jsonl) of a training run."""
  rates = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      entry = json.loads(line)
      if "train/images_per_s" in entry:
        rates.append(entry["train/images_per_s"])
  return {
      "images_per_s": sum(rates[1:]) / max(len(rates) - 1, 1)
      if len(rates) > 1
      else (rates[0] if rates else float("nan"))
  }


def run(task: str, arg: str, out: str, studies: int, steps: int = 0) -> list[dict[str, Any]]:
  """Trains both arms one after the other (skipping finished ones) and measures them."""
  results = []
  for arm, views in ARMS.items():
    config = arm_config(task, arg, views, studies, steps)
    workdir = os.path.join(out, f"{task}_{arm}")
    cache_dir = prepare.prepare_cache(config, load_view_predictor=restore.load_view_predictor)
    train_videos = len(
        selection.select_videos(cache_dir, "train", tasks=[task], views=views or None)
    )
    timing = os.path.join(workdir, "train_seconds.json")
    if not os.path.exists(timing):
      start = time.perf_counter()
      modes.train(config, workdir)
      with open(timing, "w") as f:
        json.dump({"seconds": time.perf_counter() - start}, f)
    with open(timing) as f:
      seconds = json.load(f)["seconds"]
    figures = train_figures(workdir)
    row = {
        "arm": arm,
        "task": task,
        "train_videos": train_videos,
        "steps": config.train.steps,
        "batch_size": config.train.batch_size,
        "train_seconds": seconds,
        "epoch_seconds": train_videos / figures["images_per_s"],
        **figures,
        "test_a4c": evaluate_on(workdir, ("A4C",)),
    }
    if views != ("A4C",):
      row["test_all"] = evaluate_on(workdir, ())
    results.append(row)
    print(json.dumps(row, default=str))
  return results


def markdown(results: Sequence[dict[str, Any]]) -> str:
  """The side-by-side table of :func:`run`'s results."""
  task = tasks_lib.get_task(results[0]["task"])
  metric = "auc" if task.is_binary else "r2"
  lines = [
      f"| arm | train videos | {metric} on A4C test (95% CI) | MAE on A4C test | "
      "train wall time (steps) | images/s | one epoch |",
      "|---|---|---|---|---|---|---|",
  ]
  for r in results:
    m, mae = r["test_a4c"][metric], r["test_a4c"].get("mae")
    lines.append(
        f"| {r['arm']} | {r['train_videos']} | {m['value']:.3f} ({m['ci_low']:.3f}–"
        f"{m['ci_high']:.3f}) | {mae['value']:.2f} {task.unit} | {r['train_seconds']:.0f} s "
        f"({r['steps']}) | {r['images_per_s']:.0f} | {r['epoch_seconds']:.1f} s |"
        if mae
        else f"| {r['arm']} | {r['train_videos']} | {m['value']:.3f} | | "
        f"{r['train_seconds']:.0f} s | {r['images_per_s']:.0f} | {r['epoch_seconds']:.1f} s |"
    )
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--task", default="weight")
  parser.add_argument("--arg", default="cpu", help="config modifiers, e.g. cpu or test")
  parser.add_argument("--studies", type=int, default=150, help="phantom studies (7 videos each)")
  parser.add_argument("--steps", type=int, default=0, help="train steps (0: the config's)")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  results = run(args.task, args.arg, args.out, args.studies, args.steps)
  table = markdown(results)
  with open(os.path.join(args.out, "views.md"), "w") as f:
    f.write(table)
  print(table)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
