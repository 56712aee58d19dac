"""--mode=sweep: both strategies, killed with SIGKILL and resumed, give the same summary, and each
member equals a plain --mode=train with its hyperparameters; the best member is promoted."""

import csv
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from configs import weight
from echonet_jax import modes
from echonet_jax import writers
from echonet_jax.data import prepare
from echonet_jax.errors import ConfigError
from echonet_jax.experiments import sweep
from echonet_jax.experiments import sweep_grid
from echonet_jax.training import sweep as sweep_lib
from tests.testing import REPO

# A child process that trains the sweep and SIGKILLs itself right after the 5th checkpoint save:
# sequential, mid-way through member 2 (members 0 and 1 done); vmap, between members' saves at the
# last step (member 0 at step 6, members 1-3 at step 3).
_KILLED = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from configs import weight
    from echonet_jax import modes
    from echonet_jax.training import checkpoints
    saves = []
    original = checkpoints.Checkpoints.save

    def save(self, step, *args, **kwargs):
      result = original(self, step, *args, **kwargs)
      saves.append(step)
      if len(saves) == 5:
        self.wait()
        os.kill(os.getpid(), signal.SIGKILL)
      return result

    if __name__ == "__main__":  # the phantom generator may start worker processes
      checkpoints.Checkpoints.save = save
      config = weight.get_config("test")
      config.sweep.strategy = sys.argv[2]
      modes.sweep(config, sys.argv[1])
""")


def _config(strategy):
  config = weight.get_config("test")  # a 2 x 2 grid: lr (1e-3, 3e-4) x weight decay (1e-4, 0)
  config.sweep.strategy = strategy
  return config


def _val_scores(folder):
  return {r["step"]: r["val/score"] for r in writers.read_metrics(folder) if "val/score" in r}


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
  """{strategy: workdir} of sweeps killed (kill -9) mid-way and then resumed to the end."""
  script = tmp_path_factory.mktemp("script") / "killed.py"
  script.write_text(_KILLED.format(repo=REPO))
  prepare.prepare_cache(_config("vmap"))  # the phantom cache, shared with the child processes
  out = {}
  for strategy in ("sequential", "vmap"):
    workdir = str(tmp_path_factory.mktemp(f"sweep_{strategy}"))
    proc = subprocess.run(
        [sys.executable, str(script), workdir, strategy],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    done = [sweep_lib.read_done(sweep.sweep_dir(workdir), k) for k in range(4)]
    assert not os.path.exists(os.path.join(workdir, "sweep", "summary.csv"))
    if strategy == "sequential":
      assert [d is not None for d in done] == [True, True, False, False]
    else:
      assert done == [None] * 4
    rows = modes.sweep(_config(strategy), workdir)  # resumes every member where it stopped
    assert rows is not None and [r["status"] for r in rows] == ["done"] * 4
    out[strategy] = workdir
  return out


def _summary(workdir):
  with open(os.path.join(workdir, "sweep", "summary.csv")) as f:
    return list(csv.DictReader(f))


@pytest.mark.slow
def test_resumed_sweeps_agree_and_equal_plain_training(killed_and_resumed, tmp_path):
  seq, vmap = _summary(killed_and_resumed["sequential"]), _summary(killed_and_resumed["vmap"])
  assert [r["member"] for r in seq] == ["0", "1", "2", "3"]
  assert [(r["lr"], r["weight_decay"]) for r in seq] == [
      ("0.001", "0.0001"),
      ("0.001", "0.0"),
      ("0.0003", "0.0001"),
      ("0.0003", "0.0"),
  ]
  for a, b in zip(seq, vmap):
    assert (a["member"], a["lr"], a["weight_decay"], a["best_step"]) == (
        b["member"],
        b["lr"],
        b["weight_decay"],
        b["best_step"],
    )
    np.testing.assert_allclose(float(a["best_score"]), float(b["best_score"]), rtol=1e-3)
    np.testing.assert_allclose(float(a["val/weight/mae"]), float(b["val/weight/mae"]), rtol=1e-3)
  assert set(seq[0]) >= {"best_step", "best_score", "val/weight/mae", "val/weight/r2"}

  # A plain --mode=train with member 1's hyperparameters: the same validation trajectory.
  config = sweep_lib.member_config(_config("sequential"), sweep_grid.grid(_config("sequential"))[1])
  config.train.evaluate_at_end = False
  train_dir = str(tmp_path / "train")
  modes.train(config, train_dir)
  plain = _val_scores(train_dir)
  assert sorted(plain) == [3, 6]
  for strategy, workdir in killed_and_resumed.items():
    member = _val_scores(sweep_lib.member_dir(sweep.sweep_dir(workdir), 1))
    assert sorted(member) == [3, 6]
    np.testing.assert_allclose(
        [member[s] for s in (3, 6)],
        [plain[s] for s in (3, 6)],
        rtol=1e-5 if strategy == "sequential" else 1e-3,
        err_msg=strategy,
    )


@pytest.mark.slow
def test_best_member_is_promoted_and_evaluate_says_so(killed_and_resumed):
  workdir = killed_and_resumed["vmap"]
  rows = _summary(workdir)
  # The promotion rule: the lowest finite validation score (a diverged member's NaN never wins),
  # ties to the lower member index.
  finite = [r for r in rows if r["best_step"] and math.isfinite(float(r["best_score"]))]
  assert len(finite) >= 2, rows
  best = min(finite, key=lambda r: (float(r["best_score"]), int(r["member"])))
  with open(os.path.join(workdir, "sweep", "promoted.json")) as f:
    promoted = json.load(f)
  assert promoted["member"] == int(best["member"])
  with open(os.path.join(workdir, "config.json")) as f:
    saved = json.load(f)
  assert saved["optim"]["lr"] == float(best["lr"])
  assert saved["optim"]["weight_decay"] == float(best["weight_decay"])
  assert os.listdir(os.path.join(workdir, "checkpoints")) == [best["best_step"]]
  with open(os.path.join(workdir, "sweep", "metrics.jsonl")) as f:
    logged = [json.loads(line) for line in f]
  assert {r["member"] for r in logged} == {0, 1, 2, 3}
  assert all(
      os.listdir(os.path.join(sweep_lib.member_dir(sweep.sweep_dir(workdir), k), "tb"))
      for k in range(4)
  )
  assert os.path.getsize(os.path.join(workdir, "sweep", "grid.png")) > 1000

  results = modes.evaluate(None, workdir, "val")
  assert set(results) == {"weight"}
  with open(os.path.join(workdir, "eval", "val", "results.md")) as f:
    head = f.readline()
  assert head.startswith(f"Model: sweep member {best['member']} of 4 (lr={float(best['lr']):g}")
  # --mode=sweep_summary merges again and promotes the same member.
  again = modes.sweep_summary(workdir)
  assert sweep.best_member(again)["member"] == promoted["member"]


def test_bad_sweep_inputs_get_one_clear_line(tmp_path):
  sweep.record_grid(_config("vmap"), str(tmp_path))
  sweep.record_grid(_config("sequential"), str(tmp_path))  # the strategy may change on resume
  other = _config("vmap")
  other.sweep.weight_decay = (1e-5,)
  with pytest.raises(
      ConfigError,
      match=r"grid.json was made with sweep.weight_decay=\[0.0001, "
      r"0.0\], this run has \[1e-05\]; use a new --workdir",
  ):
    sweep.record_grid(other, str(tmp_path))
  (tmp_path / "trained" / "checkpoints" / "6").mkdir(parents=True)
  with pytest.raises(ConfigError, match="holds checkpoints of a --mode=train run"):
    sweep.run(_config("vmap"), str(tmp_path / "trained"))
