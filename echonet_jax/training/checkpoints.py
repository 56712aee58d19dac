"""The one Orbax wrapper: keeps the latest N checkpoints for resuming *and* the best one.

Each checkpoint holds the train state, the data iterator's state (Grain) and the validation metrics
it was ranked by. Orbax's ``best_fn`` with ``max_to_keep`` alone keeps the N best and deletes the
latest, so retention is a preservation policy: LatestN OR BestN.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

STATE = "state"
DATA = "data"


class Checkpoints:
  """Saves and restores ``(state, data iterator)`` under ``directory``."""

  def __init__(self, directory: str, *, keep_latest: int = 2, best_metric: str | None = None,
               best_mode: str = "min", async_save: bool = True):
    if best_mode not in ("min", "max"):
      raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
    self.best_metric = best_metric
    self.best_mode = best_mode
    policies = [checkpoint_managers.LatestN(n=keep_latest)]
    if best_metric:
      policies.append(checkpoint_managers.BestN(
          get_metric_fn=self._metric, reverse=best_mode == "min", n=1,
          keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
        enable_async_checkpointing=async_save, create=True)
    handlers = {STATE: ocp.StandardCheckpointHandler()}
    try:
      import grain  # pylint: disable=g-import-not-at-top
      handlers[DATA] = grain.checkpoint.CheckpointHandler()
    except ImportError:  # The GPU host may lack grain; then no iterator state is saved.
      pass
    self._has_data_handler = DATA in handlers
    self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options,
                                          item_handlers=handlers)

  def _metric(self, metrics: dict[str, Any]) -> float:
    value = float(metrics.get(self.best_metric, math.nan))
    if math.isnan(value):  # Unrankable checkpoints sort as worst.
      return -math.inf if self.best_mode == "max" else math.inf
    return value

  def latest_step(self) -> int | None:
    """The newest saved step, or None."""
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    """The step with the best validation metric, or the latest step when none was ranked."""
    ranked = []
    for step in self._manager.all_steps():
      metrics = self._manager.metrics(step)
      if metrics and self.best_metric in metrics and not math.isnan(metrics[self.best_metric]):
        ranked.append((self._metric(metrics), step))
    if not ranked:
      return self.latest_step()
    return (max if self.best_mode == "max" else min)(ranked)[1]

  def save(self, step: int, state: Any, *, data_iterator: Any = None,
           metrics: dict[str, float] | None = None, force: bool = False) -> bool:
    """Saves asynchronously; ``metrics`` (validation) rank the checkpoint for BestN."""
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None and self._has_data_handler:
      import grain  # pylint: disable=g-import-not-at-top
      items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
    return self._manager.save(step, args=ocp.args.Composite(**items),
                              metrics=dict(metrics) if metrics else None, force=force)

  def restore(self, step: int, abstract_state: Any, *, data_iterator: Any = None) -> Any:
    """Restores the state at ``step`` with the shardings of ``abstract_state`` (and the iterator)."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    items = {STATE: ocp.args.StandardRestore(target)}
    if data_iterator is not None and self._has_data_handler:
      import grain  # pylint: disable=g-import-not-at-top
      items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return restored[STATE]

  def all_steps(self) -> list[int]:
    """Every step kept on disk."""
    return list(self._manager.all_steps())

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves, then closes the manager."""
    self._manager.wait_until_finished()
    self._manager.close()
