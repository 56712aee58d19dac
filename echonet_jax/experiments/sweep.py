"""The paper's lr × weight-decay grid search: ``--mode=sweep`` and ``--mode=sweep_summary``.

``run`` trains the members of ``config.sweep`` that are not finished yet (all of them, or the
``config.sweep.members`` of one array job), stacked (``vmap``) or one after another
(``sequential``); sweep_grid.py says which members and how they are grouped. When the last member
of the grid is done, ``summarize`` ranks them by the validation ``val/score`` that ranks
checkpoints (the test split never chooses), writes WORKDIR/sweep/{summary.csv, grid.png,
metrics.jsonl} and promotes the best member: its best checkpoint becomes WORKDIR/checkpoints and its
config WORKDIR/config.json, so evaluate, predict and saliency use it unchanged;
WORKDIR/sweep/promoted.json says which member it is.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from typing import Any
from typing import Sequence

import jax
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
import ml_collections
import numpy as np

from echonet_jax import writers
from echonet_jax.data import cache
from echonet_jax.data import prepare
from echonet_jax.errors import ConfigError
from echonet_jax.experiments import sweep_grid
from echonet_jax.training import checkpoints as checkpoints_lib
from echonet_jax.training import restore
from echonet_jax.training import step as step_lib
from echonet_jax.training import sweep as sweep_lib
from echonet_jax.training import train as train_loop

PROMOTED = "promoted.json"
# What must match for a sweep folder to be resumed or extended: the grid and everything that
# decides a member's trajectory (network, data, batches, schedule).
_GRID_KEYS = (
    "sweep.lr",
    "sweep.weight_decay",
    "task",
    "tasks",
    "model",
    "data.image_size",
    "data.channels",
    "data.views",
    "seed",
    "aug",
    "loss",
    "train.batch_size",
    "train.workers",
    "train.steps",
    "train.eval_every",
    "train.checkpoint_every",
    "optim.schedule",
    "optim.warmup_steps",
    "optim.final_lr_frac",
)


def sweep_dir(workdir: str) -> str:
  return os.path.join(workdir, "sweep")


def _lookup(config: Any, dotted: str) -> Any:
  value = config
  for part in dotted.split("."):
    value = value[part]
  value = value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
  return json.loads(json.dumps(value, default=list))


def _write_json(path: str, value: Any) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(value, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)


def record_grid(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes WORKDIR/sweep/{grid,config}.json, or refuses a sweep folder of another grid or run."""
  path = os.path.join(sweep_dir(workdir), "grid.json")
  new = {key: _lookup(config, key) for key in _GRID_KEYS}
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    for key in _GRID_KEYS:
      if old.get(key) != new[key]:
        raise ConfigError(
            f"{path} was made with {key}={old.get(key)!r}, this run has "
            f"{new[key]!r}; use a new --workdir for another grid"
        )
  if jax.process_index() == 0:
    os.makedirs(sweep_dir(workdir), exist_ok=True)
    _write_json(path, new)
    _write_json(
        os.path.join(sweep_dir(workdir), "config.json"), json.loads(config.to_json_best_effort())
    )


def _check_promotable(workdir: str) -> None:
  ckpt_dir = os.path.join(workdir, "checkpoints")
  ours = os.path.exists(os.path.join(sweep_dir(workdir), PROMOTED))
  if os.path.isdir(ckpt_dir) and any(n.isdigit() for n in os.listdir(ckpt_dir)) and not ours:
    raise ConfigError(
        f"{workdir} holds checkpoints of a --mode=train run; use a new --workdir "
        "for the sweep (its best member becomes the workdir's model)"
    )


def run(config: ml_collections.ConfigDict, workdir: str) -> list[dict[str, Any]] | None:
  """Trains this job's unfinished members; returns the summary rows once the grid is complete."""
  members = sweep_grid.grid(config)
  mine = sweep_grid.selected(config, members)
  strategy = sweep_grid.resolve_strategy(config)
  sweep_grid.groups(mine, strategy, int(config.sweep.members_per_program))  # checks the group size
  _check_promotable(workdir)
  record_grid(config, workdir)
  cache_dir = prepare.prepare_cache(config, load_view_predictor=restore.load_view_predictor)
  label_stats = cache.read_meta(cache_dir).get("label_stats", {})
  out = sweep_dir(workdir)
  built = None
  for group in sweep_grid.groups(mine, strategy, int(config.sweep.members_per_program)):
    pending = [m for m in group if sweep_lib.read_done(out, m.index) is None]
    if pending:
      print(f"sweep: training members {[m.index for m in pending]} ({strategy})")
      built = built or sweep_lib.Programs(config, label_stats)
      sweep_lib.train_group(built, out, pending, stacked=strategy == "vmap", cache_dir=cache_dir)
  unfinished = [m.index for m in members if sweep_lib.read_done(out, m.index) is None]
  if unfinished:
    print(
        f"sweep: {len(members) - len(unfinished)}/{len(members)} members done; members "
        f"{unfinished} remain. The summary is written when the last one finishes, or by "
        "--mode=sweep_summary."
    )
    return None
  return summarize(workdir)


def _member_row(out: str, member: sweep_lib.Member) -> dict[str, Any]:
  row: dict[str, Any] = {
      "member": member.index,
      "lr": member.lr,
      "weight_decay": member.weight_decay,
      "status": "unfinished",
      "best_step": None,
      "best_score": math.nan,
  }
  done = sweep_lib.read_done(out, member.index)
  if done is None:
    return row
  row["status"] = "diverged" if done.get("diverged") else "done"
  folder = sweep_lib.member_dir(out, member.index)
  ckpts = checkpoints_lib.Checkpoints(
      os.path.join(folder, "checkpoints"), best_metric=train_loop.BEST_METRIC, async_save=False
  )
  best = ckpts.best_step()
  ckpts.close()
  if best is None:
    return row
  row["best_step"] = best
  for logged in writers.read_metrics(folder):
    if logged["step"] == best and train_loop.BEST_METRIC in logged:
      row["best_score"] = logged[train_loop.BEST_METRIC]
      if row["best_score"] is None:
        row["best_score"] = math.nan
      row.update(
          {k: v for k, v in logged.items() if k.startswith("val/") and k != train_loop.BEST_METRIC}
      )
  return row


def best_member(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
  """The row with the lowest finite ``best_score`` (ties: the lower member index), or None."""
  ranked = [r for r in rows if r["best_step"] is not None and math.isfinite(r["best_score"])]
  return min(ranked, key=lambda r: (r["best_score"], r["member"])) if ranked else None


def summarize(workdir: str) -> list[dict[str, Any]]:
  """Writes the sweep's summary.csv, metrics.jsonl and grid.png; promotes the best member."""
  out = sweep_dir(workdir)
  config_path = os.path.join(out, "config.json")
  if not os.path.exists(config_path):
    raise ConfigError(f"{workdir} holds no sweep (no {config_path}); run --mode=sweep first")
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  members = sweep_grid.grid(config)
  rows = [_member_row(out, m) for m in members]
  best = best_member(rows)
  if jax.process_index() != 0:
    return rows
  _write_csv(os.path.join(out, "summary.csv"), rows)
  _write_metrics(out, members)
  title = (
      f"{', '.join(step_lib.task_names(config))}: each member's best validation "
      f"{train_loop.BEST_METRIC}"
  )
  plot_grid(
      os.path.join(out, "grid.png"), rows, config.sweep.lr, config.sweep.weight_decay, best, title
  )
  unfinished = [r["member"] for r in rows if r["status"] == "unfinished"]
  if unfinished:
    print(f"sweep: members {unfinished} have not finished; ranked the others")
  if best is None:
    print("sweep: no member has a finite validation score; nothing promoted")
    return rows
  promote(workdir, config, members[best["member"]], best, len(members))
  print(
      f"sweep: member {best['member']} (lr={best['lr']:g}, weight_decay="
      f"{best['weight_decay']:g}) is best: {train_loop.BEST_METRIC}={best['best_score']:.4f} "
      f"at step {best['best_step']}; promoted to {workdir}/checkpoints"
  )
  return rows


def _write_csv(path: str, rows: Sequence[dict[str, Any]]) -> None:
  extra = sorted({k for r in rows for k in r if k.startswith("val/")})
  columns = ["member", "lr", "weight_decay", "status", "best_step", "best_score", *extra]
  with open(path + ".tmp", "w", newline="") as f:
    w = csv.DictWriter(f, columns, restval="")
    w.writeheader()
    for row in rows:
      w.writerow(
          {
              k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
              for k, v in row.items()
          }
      )
  os.replace(path + ".tmp", path)


def _write_metrics(out: str, members: Sequence[sweep_lib.Member]) -> None:
  path = os.path.join(out, "metrics.jsonl")
  with open(path + ".tmp", "w") as f:
    for m in members:
      folder = sweep_lib.member_dir(out, m.index)
      if not os.path.exists(os.path.join(folder, "metrics.jsonl")):
        continue
      for row in writers.read_metrics(folder):
        tagged = {"member": m.index, "lr": m.lr, "weight_decay": m.weight_decay, **row}
        f.write(json.dumps(writers.json_safe(tagged)) + "\n")
  os.replace(path + ".tmp", path)


def promote(
    workdir: str,
    config: ml_collections.ConfigDict,
    member: sweep_lib.Member,
    row: dict[str, Any],
    num_members: int,
) -> None:
  """The member's best checkpoint becomes WORKDIR/checkpoints and its config WORKDIR/config.json."""
  _check_promotable(workdir)
  src = os.path.join(
      sweep_lib.member_dir(sweep_dir(workdir), member.index), "checkpoints", str(row["best_step"])
  )
  staging = os.path.join(workdir, "checkpoints.promoting")
  shutil.rmtree(staging, ignore_errors=True)
  shutil.copytree(src, os.path.join(staging, str(row["best_step"])))
  _write_json(
      os.path.join(sweep_dir(workdir), PROMOTED),
      writers.json_safe(
          {
              "member": member.index,
              "num_members": num_members,
              "lr": member.lr,
              "weight_decay": member.weight_decay,
              "best_step": row["best_step"],
              "best_score": row["best_score"],
              "metric": train_loop.BEST_METRIC,
          }
      ),
  )
  target = os.path.join(workdir, "checkpoints")
  shutil.rmtree(target, ignore_errors=True)
  os.replace(staging, target)
  chosen = sweep_lib.member_config(config, member)
  with open(os.path.join(workdir, "config.json.tmp"), "w") as f:
    f.write(chosen.to_json_best_effort(indent=2, sort_keys=True))
  os.replace(os.path.join(workdir, "config.json.tmp"), os.path.join(workdir, "config.json"))


def describe_promotion(workdir: str) -> str | None:
  """One line saying which sweep member WORKDIR's model is, or None when it was not a sweep's."""
  path = os.path.join(sweep_dir(workdir), PROMOTED)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    p = json.load(f)
  return (
      f"Model: sweep member {p['member']} of {p['num_members']} (lr={p['lr']:g}, "
      f"weight_decay={p['weight_decay']:g}), chosen by validation {p['metric']}="
      f"{p['best_score']:.4f} at step {p['best_step']}"
  )


def plot_grid(
    path: str,
    rows: Sequence[dict[str, Any]],
    lrs: Sequence[float],
    wds: Sequence[float],
    best: dict[str, Any] | None,
    title: str,
) -> None:
  """Heatmap of each member's best validation score over lr × weight decay; the chosen cell boxed."""
  scores = np.full((len(lrs), len(wds)), np.nan)
  for r in rows:
    scores[r["member"] // len(wds), r["member"] % len(wds)] = r["best_score"]
  fig = Figure(figsize=(1.2 * len(wds) + 2.6, 0.8 * len(lrs) + 1.8), dpi=120, layout="constrained")
  ax = fig.add_subplot()
  image = ax.imshow(np.ma.masked_invalid(scores), cmap="viridis_r", aspect="auto")
  fig.colorbar(image, ax=ax, label=f"{train_loop.BEST_METRIC} (lower is better)")
  low, high = np.nanmin(scores, initial=np.inf), np.nanmax(scores, initial=-np.inf)
  for i in range(len(lrs)):
    for j in range(len(wds)):
      value = scores[i, j]
      text = f"{value:.3f}" if math.isfinite(value) else rows[i * len(wds) + j]["status"]
      light = math.isfinite(value) and (value - low) <= 0.5 * (high - low)  # yellow end of the map
      ax.text(
          j,
          i,
          text,
          ha="center",
          va="center",
          fontsize=8,
          color="black" if light or not math.isfinite(value) else "white",
      )
  if best is not None:
    i, j = best["member"] // len(wds), best["member"] % len(wds)
    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=3))
    ax.text(j, i + 0.3, "chosen", ha="center", va="center", fontsize=7, color="red")
  ax.set_xticks(range(len(wds)), [f"{w:g}" for w in wds])
  ax.set_yticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
  ax.set(xlabel="weight decay", ylabel="learning rate")
  ax.set_title(title, fontsize=9)
  fig.savefig(path + ".tmp.png")
  os.replace(path + ".tmp.png", path)
