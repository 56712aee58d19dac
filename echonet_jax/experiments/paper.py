"""The paper's results regenerated on the phantom by one command (issue 16).

  python -m echonet_jax.experiments.paper --scale={test,cpu,full} --out DIR [--tasks a,b] [--workers N]

Writes DIR/results.md (with frames.png, ablations.png) and DIR/results.json. Every run is an
ordinary workdir under DIR (DIR/main/<task>, DIR/multitask, DIR/aug_off/<task>, DIR/budget/*,
DIR/views/<task>_{all,a4c}, DIR/video), so --mode=evaluate/predict/saliency work on it; a finished
run (WORKDIR/paper_run.json) is skipped on rerun and a killed one resumes from its checkpoint.
XLA programs are kept in JAX's persistent compilation cache ($ECHONET_JAX_CACHE/xla, as launch.py):
runs of one network and task compile once.

Parts (experiments/paper_plan.py): 1 every task with the frame model (full: the 24-model
lr x weight-decay grid per task by --mode=sweep; cpu and test: one config, no grid); 2 EF direct vs
derived from ESV/EDV; 3 multi-task vs single-task; 4 augmentation on vs off (one binary, two
regression tasks); 5 metric vs frames averaged; 6 one budget as 4x the patients with 1/4 of the
frames, or 1/4 of the patients with every frame; 7 A4C only vs all views (experiments/views.py);
8 the video model (configs/ef_video.py) vs the frame model. Test scale skips 4 and 6-8.

Budget of ``--scale=cpu`` (all ten tasks), from rates measured on the shared 2-core machine on
2026-12-05 (load average 1-4): the :cpu frame network trains at ~240 images/s (7.5 steps/s of batch
32); a run compiles in ~40 s the first time per program and ~15 s from the compilation cache; evaluation
with plots ~20 s. Frame runs: 10 main + 1 multi-task + 3 augmentation-off + 2 budget = 16 runs of
500 steps, ~70 s training + ~60 s overhead each = ~35 min. Views: the 150-study 7-view phantom and
its cache (~6 min) + 2 runs = ~10 min. Video: measured 0.39 steps/s of 8 clips (2.6 s a step)
x 120 steps + ~40 s compile + evaluation = ~7 min. The 500-study phantom and its four caches
(main, 5-frame, 1-in-4 patients, video) ~8 min. Total ~60 min; at twice the load (rates halve)
~2 h, so run it on a quiet machine. --scale=test --tasks=weight,ef took 185 s under load 3.5-4.5.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from typing import Any
from typing import Sequence

import jax

from echonet_jax import parallel
from echonet_jax import tasks as tasks_lib
from echonet_jax import writers
from echonet_jax.errors import ConfigError
from echonet_jax.evaluation import ef_two_ways
from echonet_jax.evaluation import paper_claims
from echonet_jax.evaluation import paper_report
from echonet_jax.experiments import paper_plan
from echonet_jax.experiments import paper_runs
from echonet_jax.phantom import EXPLAINABLE_VARIANCE


def _predictions(found: dict[str, Any], name: str, task: str, where: str = "evals") -> str | None:
  entry = (found.get(name) or {}).get(where, {}).get(task)
  path = entry and entry.get("predictions")
  return path if path and os.path.exists(path) else None


def assemble(
    tasks: Sequence[str],
    runs: Sequence[paper_plan.Run],
    found: dict[str, Any],
    skipped: dict[str, str],
    n_boot: int,
    seed: int = 0,
) -> dict[str, Any]:
  """The study's numbers from the finished runs' eval folders (``paper_runs.collect``)."""
  pair = lambda task, a, b: paper_claims.paired_difference(task, a, b, n_boot=n_boot, seed=seed)
  results: dict[str, Any] = {"main": {}, "frames": {}, "skipped": dict(skipped)}
  for task in tasks:
    e = (found.get(f"main/{task}") or {}).get("evals", {}).get(task)
    if not e:
      continue
    results["main"][task] = {
        "metrics": {row["metric"]: row for row in e["metrics"]},
        "baseline_mae": e.get("baseline_mae"),
        "n": e.get("n"),
        "checkpoint_step": e.get("checkpoint_step"),
    }
    if e.get("frames_curve"):
      curve = e["frames_curve"]
      results["frames"][task] = {**curve, "plateau": paper_claims.plateau(curve)}
  main = {t: _predictions(found, f"main/{t}", t) for t in tasks}
  if "ef_two_ways" not in skipped and all(main.get(t) for t in paper_plan.VOLUME_TASKS):
    two = ef_two_ways.ef_two_ways(main["ef"], main["esv"], main["edv"], n_boot=n_boot, seed=seed)
    results["ef_two_ways"] = writers.json_safe(two)
  by_part: dict[str, list[paper_plan.Run]] = {}
  for run in runs:
    by_part.setdefault(run.part, []).append(run)
  for part, a_of, b_of, where in (
      ("multitask", lambda t: ("multitask", t), lambda t: (f"main/{t}", t), "evals"),
      (
          "augmentation",
          lambda t: (f"aug_on/{t}" if f"aug_on/{t}" in found else f"main/{t}", t),
          lambda t: (f"aug_off/{t}", t),
          "evals",
      ),
      (
          "budget",
          lambda t: ("budget/more_patients", t),
          lambda t: ("budget/more_frames", t),
          "common",
      ),
      ("views", lambda t: ("views", f"{t}/a4c"), lambda t: ("views", f"{t}/all"), "evals"),
      ("video", lambda t: ("video", t), lambda t: (f"main/{t}", t), "evals"),
  ):
    part_tasks = sorted({t for r in by_part.get(part, ()) for t in r.tasks}, key=list(tasks).index)
    diffs = {}
    for task in part_tasks:
      a, b = _predictions(found, *a_of(task), where), _predictions(found, *b_of(task), where)
      if a and b:
        diffs[task] = pair(task, a, b)
    if diffs:
      results[part] = diffs
    elif part not in results["skipped"] and by_part.get(part):
      results["skipped"][part] = "its runs have not finished"
  results["ceilings"] = {t: dict(EXPLAINABLE_VARIANCE.get(t, {})) for t in tasks}
  results["claims"] = paper_claims.claims(results)
  return results


def machine() -> str:
  devices = jax.devices()
  return (
      f"{platform.node() or '?'} ({platform.machine()}, {os.cpu_count()} CPU cores; JAX "
      f"{jax.__version__} {jax.default_backend()}: {len(devices)} x {devices[0].device_kind})"
  )


def study(scale: str, tasks: Sequence[str], out: str, workers: int = 1) -> dict[str, Any]:
  """Runs (or resumes) the study and writes OUT/results.{md,json} and the plots."""
  start = time.perf_counter()
  runs, skipped, notes = paper_plan.plan(scale, tasks)
  records = paper_runs.execute(runs, out, workers, parallel.default_compilation_cache())
  found = paper_runs.collect(runs, out)
  n_boot = paper_plan.frame_config(paper_plan.get_scale(scale), tasks[0]).eval.n_boot
  failed = {r["name"]: r for r in records if r.get("error")}
  for run in runs:
    if run.name in failed and run.part not in skipped:
      skipped[run.part] = f"run {run.name} failed ({failed[run.name]['error']}); rerun to retry"
  results = assemble(tasks, runs, found, skipped, n_boot)
  results.update(
      scale=scale,
      tasks=list(tasks),
      note=f"Scale: {paper_plan.SCALES[scale].note}.",
      notes=notes,
      machine=machine(),
      date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      wall_seconds=time.perf_counter() - start,
      runs=[
          {k: r.get(k) for k in ("name", "part", "seconds", "skipped", "error")} for r in records
      ],
      runs_failed=len(failed),
      runs_trained=sum(not r["skipped"] and not r.get("error") for r in records),
      runs_skipped=sum(bool(r["skipped"]) for r in records),
  )
  results = writers.json_safe(results)
  paper_report.plots(results, out)
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=2, allow_nan=False)
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(paper_report.markdown_report(results))
  return results


def _check_out(out: str) -> None:
  try:
    os.makedirs(out, exist_ok=True)
    probe = os.path.join(out, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})") from e


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--scale", required=True, help="test, cpu or full")
  parser.add_argument("--out", required=True)
  parser.add_argument("--tasks", default=",".join(tasks_lib.TASK_NAMES))
  parser.add_argument("--workers", type=int, default=1, help="runs trained at once")
  args = parser.parse_args(argv)
  try:
    paper_plan.get_scale(args.scale)
    tasks = paper_plan.parse_tasks(args.tasks)
    if args.workers < 1:
      raise ConfigError(f"--workers={args.workers}; use 1 or more")
    _check_out(args.out)
    for run in paper_plan.plan(args.scale, tasks)[0]:
      paper_runs.done_record(args.out, run)  # refuses a folder of another scale
  except ConfigError as e:
    parser.exit(2, f"error: {e}\n")
  results = study(args.scale, tasks, args.out, args.workers)
  for c in results["claims"]:
    print(f"{c['claim']}: {c['verdict']}")
  print(f"wrote {os.path.join(args.out, 'results.md')}")
  if results["runs_failed"]:
    print(f"error: {results['runs_failed']} run(s) failed; see results.md", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
