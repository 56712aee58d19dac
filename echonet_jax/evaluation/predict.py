"""Trained task models on new DICOM or AVI files: one CSV row per file, its predictions or error.

``--mode=predict`` (modes.predict) checks its flags and calls :func:`predict_files`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any
from typing import Sequence

from echonet_jax.data import video
from echonet_jax.evaluation import inference
from echonet_jax.evaluation import view_model


@dataclasses.dataclass(frozen=True)
class BatchResult:
  """What a batch mode wrote: its output file (also usable as a path) and how many inputs failed."""

  path: str
  num_ok: int
  num_failed: int

  def __fspath__(self) -> str:
    return self.path


def predict_files(models: Sequence[Any], inputs: Sequence[str], output: str | None) -> BatchResult:
  """Runs trained task models (``training.restore.load`` of each workdir) on the DICOM or AVI files
  (or folders) ``inputs``; writes one CSV row per file to ``output`` (default: the first model's
  workdir's predictions.csv).

  A view model (configs/view.py) among them adds ``view``, ``view_confidence`` and
  ``view_prob_<class>`` columns. Each model reads the file through the ingestion path at its own
  image size. An input that fails in any way (unreadable, a decoder error, out of memory...) gets a
  row with ``error_type`` and ``error`` and no predictions; the others are predicted. Rows carry the
  sector ``quality`` flag and the ``checkpoint_step`` of each model (``<task>_checkpoint_step``
  columns with several models). Returns the CSV path and counts.
  """
  steps: dict[str, int] = {}
  for trained in models:
    print(
        f"predict: {', '.join(trained.names)} from checkpoint step {trained.step} of "
        f"{trained.workdir}"
    )
    if len(models) == 1:
      steps["checkpoint_step"] = trained.step
    else:
      steps.update({f"{name}_checkpoint_step": trained.step for name in trained.names})

  def predict_one(path: str) -> dict[str, Any]:
    """The input's predictions by every model, or its error row (any exception, never raised)."""
    values: dict[str, Any] = {}
    stage, clips = "reading", {}
    try:
      for trained in models:
        d = trained.config.data
        key = (d.image_size, d.num_frames, d.interval_ms, bool(d.get("echonet_dynamic_dir")))
        stage = "reading"
        if key not in clips:
          clips[key] = video.read_for_model(path, d)
        clip = clips[key]
        stage = "predicting"
        # The video's prediction: the mean of its frames or clips (a class and its probabilities
        # for a categorical task).
        values.update(view_model.row_values(view_model.video_outputs(trained, clip.frames)))
        values.update(
            frame_time_ms=clip.frame_time_ms,
            fps_assumed=clip.fps_assumed,
            quality=inference.clip_quality(clip),
        )
    except Exception as e:  # pylint: disable=broad-except
      # One bad input never stops the batch: it becomes its own error row.
      return {"path": path, **inference.input_error(e, stage)}
    return {"path": path, **values, **steps, "error_type": "", "error": ""}

  rows = [predict_one(path) for path in video.list_files(inputs)]
  output = output or os.path.join(models[0].workdir, "predictions.csv")
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  names = view_model.columns(n for m in models for n in m.names)
  columns = [
      "path",
      *names,
      "quality",
      *steps,
      "frame_time_ms",
      "fps_assumed",
      "error_type",
      "error",
  ]
  with open(output, "w", newline="") as f:
    writer = csv.DictWriter(f, columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
  failed = sum(1 for r in rows if r["error_type"])
  print(f"wrote {output}: {len(rows) - failed} files predicted, {failed} failed")
  return BatchResult(path=output, num_ok=len(rows) - failed, num_failed=failed)
