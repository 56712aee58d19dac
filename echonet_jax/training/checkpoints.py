"""The one Orbax wrapper: keeps the latest N checkpoints for resuming *and* the best one.

Each checkpoint holds the train state, the data iterator's state (Grain) and the validation metrics
it is ranked by. Orbax records those metrics only when ``best_fn`` is set, and ``best_fn`` with
``max_to_keep`` alone keeps the N best and deletes the latest; so ranking is ``best_fn`` +
``best_mode`` and retention a preservation policy, LatestN OR BestN. Reopening a folder reads the
saved metrics back, so the best survives any number of resumes.

A checkpoint that cannot be restored (truncated, half-deleted) is skipped with a warning and the
next candidate is tried: see ``restore_first``.
"""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Iterable

from absl import logging
import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from echonet_jax.errors import TrainingError

STATE = "state"
DATA = "data"
CORRUPT_DIR = "corrupt"  # unreadable steps are moved to <checkpoints>/../checkpoints.corrupt/


class Checkpoints:
  """Saves and restores ``(state, data iterator)`` under ``directory``.

  ``read_only`` opens an existing folder for restoring only (evaluate, predict, saliency): nothing
  is created, cleaned or deleted.
  """

  def __init__(
      self,
      directory: str,
      *,
      keep_latest: int = 2,
      best_metric: str | None = None,
      best_mode: str = "min",
      async_save: bool = True,
      read_only: bool = False,
  ):
    if best_mode not in ("min", "max"):
      raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
    self.directory = os.path.abspath(directory)
    self.best_metric = best_metric
    self.best_mode = best_mode
    policies = [checkpoint_managers.LatestN(n=keep_latest)]
    ranking = {}
    if best_metric:
      policies.append(
          checkpoint_managers.BestN(
              get_metric_fn=self._metric,
              reverse=best_mode == "min",
              n=1,
              keep_checkpoints_without_metrics=False,
          )
      )
      ranking = dict(best_fn=self._metric, best_mode=best_mode)
    options = ocp.CheckpointManagerOptions(
        preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
        enable_async_checkpointing=async_save and not read_only,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
        **ranking,
    )
    handlers = {STATE: ocp.StandardCheckpointHandler()}
    try:
      handlers[DATA] = grain.checkpoint.CheckpointHandler()
    except ImportError:  # The GPU host may lack grain; then no iterator state is saved.
      pass
    self._has_data_handler = DATA in handlers
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

  def _metric(self, metrics: dict[str, Any] | None) -> float:
    value = _finite((metrics or {}).get(self.best_metric))
    if value is None:  # Unrankable checkpoints sort as worst.
      return -math.inf if self.best_mode == "max" else math.inf
    return value

  def latest_step(self) -> int | None:
    """The newest saved step, or None."""
    return self._manager.latest_step()

  def metric(self, step: int) -> float | None:
    """The ranking metric saved with ``step`` (None when it was saved without one)."""
    if not self.best_metric:
      return None
    try:
      metrics = self._manager.metrics(step)
    except Exception:  # pylint: disable=broad-except  # an unreadable metrics file ranks nothing
      return None
    return _finite((metrics or {}).get(self.best_metric))

  def ranked_steps(self) -> list[int]:
    """Steps with a ranking metric, best first (ties: the later step first)."""
    scored = [(self.metric(s), s) for s in self.all_steps()]
    sign = -1.0 if self.best_mode == "max" else 1.0
    return [
        s
        for v, s in sorted(
            ((v, s) for v, s in scored if v is not None), key=lambda vs: (sign * vs[0], -vs[1])
        )
    ]

  def best_step(self) -> int | None:
    """The step with the best validation metric, or the latest step when none was ranked."""
    ranked = self.ranked_steps()
    return ranked[0] if ranked else self.latest_step()

  def candidates(self, which: str = "latest") -> list[int]:
    """Steps to try restoring, in order: the latest first, or (``which="best"``) the ranked steps
    best first and then the unranked ones, latest first."""
    newest_first = sorted(self.all_steps(), reverse=True)
    if which == "latest":
      return newest_first
    if which != "best":
      raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
    ranked = self.ranked_steps()
    return ranked + [s for s in newest_first if s not in ranked]

  def save(
      self,
      step: int,
      state: Any,
      *,
      data_iterator: Any = None,
      metrics: dict[str, float] | None = None,
      force: bool = False,
  ) -> bool:
    """Saves asynchronously; ``metrics`` (validation) rank the checkpoint for BestN."""
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None and self._has_data_handler:
      items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
    # Only finite floats are stored (the metrics file is JSON); a missing metric ranks worst.
    kept = {k: v for k, v in ((k, _finite(v)) for k, v in (metrics or {}).items()) if v is not None}
    return self._manager.save(
        step,
        args=ocp.args.Composite(**items),
        metrics=kept if metrics is not None else None,
        force=force,
    )

  def restore(self, step: int, abstract_state: Any, *, data_iterator: Any = None) -> Any:
    """Restores ``step`` with the shardings of ``abstract_state`` (and the data iterator)."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    items = {STATE: ocp.args.StandardRestore(target)}
    if data_iterator is not None and self._has_data_handler:
      items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return restored[STATE]

  def restore_first(
      self, steps: Iterable[int], abstract_state: Any, *, data_iterator: Any = None
  ) -> tuple[int, Any, list[int]]:
    """Restores the first readable step of ``steps``; returns (step, state, unreadable steps).

    Each unreadable step is logged as a warning with the reason; none readable is a TrainingError.
    """
    unreadable = []
    for step in steps:
      try:
        return step, self.restore(step, abstract_state, data_iterator=data_iterator), unreadable
      except Exception as e:  # pylint: disable=broad-except  # any fault of the files on disk
        unreadable.append(step)
        logging.warning(
            "checkpoint step %d in %s is unreadable (%s); trying the previous one",
            step,
            self.directory,
            _one_line(e),
        )
    raise TrainingError(
        f"{self.directory}: no readable checkpoint (unreadable steps: "
        f"{', '.join(map(str, unreadable)) or 'none saved'})"
    )

  def set_aside(self, steps: Iterable[int]) -> list[str]:
    """Moves unreadable ``steps`` out of the folder (to ``checkpoints.corrupt/``) so that training
    can save those steps again; nothing is deleted. Returns the new paths."""
    moved = []
    for step in steps:
      src = os.path.join(self.directory, str(step))
      if not os.path.exists(src):
        continue
      dst_dir = self.directory.rstrip(os.sep) + "." + CORRUPT_DIR
      os.makedirs(dst_dir, exist_ok=True)
      dst, n = os.path.join(dst_dir, str(step)), 1
      while os.path.exists(dst):
        dst, n = os.path.join(dst_dir, f"{step}.{n}"), n + 1
      os.replace(src, dst)
      logging.warning("moved unreadable checkpoint step %d to %s", step, dst)
      moved.append(dst)
    if moved:
      self._manager.reload()
    return moved

  def all_steps(self) -> list[int]:
    """Every step kept on disk."""
    return list(self._manager.all_steps())

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves, then closes the manager."""
    try:
      self._manager.wait_until_finished()
    finally:
      self._manager.close()


def _finite(value: Any) -> float | None:
  try:
    value = float(value)
  except (TypeError, ValueError):
    return None
  return value if math.isfinite(value) else None


def _one_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
