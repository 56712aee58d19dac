"""Checkpoints: ranking by val/score through Orbax, the best kept across reopening, and unreadable
checkpoints skipped for the previous intact one."""

import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from echonet_jax.errors import TrainingError
from echonet_jax.training import checkpoints as checkpoints_lib

METRIC = "val/score"


def _open(directory, **kwargs):
  return checkpoints_lib.Checkpoints(
      str(directory), keep_latest=2, best_metric=METRIC, best_mode="min", **kwargs
  )


def _state(step):
  return {"w": jnp.full((4, 3), float(step)), "b": jnp.arange(3.0) + step}


def _save_all(ckpts, scores):
  for step, score in scores:
    ckpts.save(step, _state(step), metrics=None if score is None else {METRIC: score})
  ckpts.wait()


def test_best_is_neither_first_nor_latest_and_survives_reopening(tmp_path):
  ckpts = _open(tmp_path)
  _save_all(ckpts, [(10, 0.9), (20, 0.2), (30, 0.5), (40, 0.7)])
  # LatestN(2) keeps 30 and 40; BestN keeps 20, the lowest score; 10 is gone.
  assert ckpts.all_steps() == [20, 30, 40]
  assert ckpts.best_step() == 20
  assert ckpts.metric(20) == pytest.approx(0.2)
  with open(os.path.join(tmp_path, "20", "metrics", "metrics")) as f:
    assert json.load(f)[METRIC] == pytest.approx(0.2)  # Orbax wrote the metrics (best_fn is set)
  ckpts.close()

  # A resumed run: reopen, save worse, unranked and NaN checkpoints; the best stays.
  ckpts = _open(tmp_path)
  assert ckpts.best_step() == 20
  _save_all(ckpts, [(50, 0.8), (60, None), (70, float("nan")), (80, 0.6)])
  assert ckpts.all_steps() == [20, 70, 80]
  assert ckpts.best_step() == 20
  assert ckpts.candidates("best") == [20, 80, 70]  # ranked best first, then unranked newest first
  step, state, unreadable = ckpts.restore_first(ckpts.candidates("best"), _state(0))
  assert (step, unreadable) == (20, [])
  np.testing.assert_array_equal(state["w"], np.full((4, 3), 20.0))
  ckpts.close()

  # A later, better checkpoint takes over and the old best is then deleted by the policy.
  ckpts = _open(tmp_path)
  _save_all(ckpts, [(90, 0.1), (100, 0.3)])
  assert ckpts.all_steps() == [90, 100] and ckpts.best_step() == 90
  ckpts.close()


def test_without_any_ranked_checkpoint_the_latest_is_best(tmp_path):
  ckpts = _open(tmp_path)
  _save_all(ckpts, [(1, None), (2, None), (3, None)])
  assert ckpts.all_steps() == [2, 3] and ckpts.best_step() == 3
  ckpts.close()


def _truncate(path):
  os.truncate(path, os.path.getsize(path) // 2)


@pytest.mark.parametrize(
    "damage", ["truncated state metadata", "truncated array file", "state folder deleted"]
)
def test_an_unreadable_latest_checkpoint_is_skipped_for_the_previous(tmp_path, damage, caplog):
  ckpts = _open(tmp_path / "c")
  _save_all(ckpts, [(1, 0.5), (2, 0.4), (3, 0.3)])
  ckpts.close()
  state_dir = tmp_path / "c" / "3" / "state"
  if damage == "truncated state metadata":
    _truncate(state_dir / "_METADATA")
  elif damage == "truncated array file":
    files = [p for p in state_dir.rglob("*") if p.is_file() and "/d/" in str(p)]
    assert files
    for path in files:
      _truncate(path)
  else:
    shutil.rmtree(state_dir)

  ckpts = _open(tmp_path / "c", read_only=True)
  assert ckpts.best_step() == 3  # its metrics are intact: it is still ranked first
  step, state, unreadable = ckpts.restore_first(ckpts.candidates("best"), _state(0))
  assert (step, unreadable) == (2, [3])
  np.testing.assert_array_equal(state["b"], np.arange(3.0) + 2)
  assert any(
      "checkpoint step 3" in r.getMessage() and "unreadable" in r.getMessage()
      for r in caplog.records
  )
  ckpts.close()

  # Training sets the unreadable step aside (nothing is deleted) so that it can be saved again.
  ckpts = _open(tmp_path / "c")
  moved = ckpts.set_aside([3])
  assert moved == [str(tmp_path / "c.corrupt" / "3")] and os.path.isdir(moved[0])
  assert ckpts.all_steps() == [2]
  _save_all(ckpts, [(3, 0.35)])
  assert 3 in ckpts.all_steps()
  ckpts.close()


def test_no_readable_checkpoint_is_one_error(tmp_path):
  ckpts = _open(tmp_path)
  _save_all(ckpts, [(1, 0.5)])
  ckpts.close()
  shutil.rmtree(tmp_path / "1" / "state")
  ckpts = _open(tmp_path, read_only=True)
  with pytest.raises(TrainingError, match="no readable checkpoint"):
    ckpts.restore_first(ckpts.candidates("latest"), _state(0))
  ckpts.close()
