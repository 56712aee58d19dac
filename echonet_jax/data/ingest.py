"""Labels CSV (or EchoNet-Dynamic) -> de-identified ArrayRecord cache, once, in parallel: what
``python -m echonet_jax.preprocess`` (the CLI, ``echonet_jax/preprocess.py``) runs.

A :class:`~echonet_jax.data.spec.CacheSpec` says how; the build itself (shards, reuse of
unchanged videos, errors.csv, meta.json) is :mod:`echonet_jax.data.build`. Rerunning after the
labels CSV changed updates the folder: added and changed rows are written, removed rows dropped,
videos whose file did not change are copied rather than read again.
"""

from __future__ import annotations

from typing import Any

from echonet_jax.data import build
from echonet_jax.data import echonet_dynamic
from echonet_jax.data import labels as labels_lib
from echonet_jax.data import views as views_lib
from echonet_jax.data.spec import CacheSpec


def build_cache(
    labels_csv: str,
    out_dir: str,
    spec: CacheSpec | None = None,
    *,
    workers: int | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    progress: bool = True,
    finalize_only: bool = False,
    label_ranges: dict | str | None = None,
    view_predictor: views_lib.Predictor | None = None,
    view_min_confidence: float = 0.5,
) -> dict[str, Any]:
  """Converts every video of a labels CSV into the cache at ``out_dir`` (``spec`` default: the
  defaults of :class:`CacheSpec`).

  With ``spec.source == "echonet_dynamic"``, ``labels_csv`` is instead the EchoNet-Dynamic root
  (``root/FileList.csv`` + ``root/Videos``; ``label_ranges`` does not apply).

  Returns a summary: ``written`` (videos written now), ``read`` / ``reused`` (of those, read from
  their files / copied from the previous cache), ``skipped`` (videos of shards finished earlier),
  ``failed`` ({error type: count} of this run), ``changes`` (since the previous build), shard
  counts and ``meta``. ``workers`` defaults to the CPU count; 0 or 1 works in this process. Raises
  LabelsError for a bad CSV, CacheError for a folder of other settings or a worker that died.
  ``view_predictor`` (``training.restore.load_view_predictor``) fills every blank view first.
  """
  spec = spec or CacheSpec()
  dynamic = spec.source == "echonet_dynamic"
  if dynamic:
    rows = echonet_dynamic.read_filelist(labels_csv)
  else:
    rows = labels_lib.read_labels(labels_csv, label_ranges)
  if view_predictor is not None:
    rows = views_lib.fill_views(rows, view_predictor, progress=progress)
  return build.build_from_rows(
      rows,
      out_dir,
      spec,
      workers=workers,
      shard_index=shard_index,
      num_shards=num_shards,
      progress=progress,
      finalize_only=finalize_only,
      rows_source=f"{labels_csv}/{echonet_dynamic.FILELIST}" if dynamic else str(labels_csv),
      view_min_confidence=view_min_confidence,
  )


def build_echonet_dynamic_cache(
    root: str, out_dir: str, spec: CacheSpec | None = None, **options
) -> dict[str, Any]:
  """Converts EchoNet-Dynamic (``root/FileList.csv`` + ``root/Videos``) into the cache.

  ``spec`` defaults to ``CacheSpec(source="echonet_dynamic")`` and must have that source;
  ``options`` are :func:`build_cache`'s keywords (``workers``, ``shard_index``, ``num_shards``,
  ``progress``, ``finalize_only``).
  """
  spec = spec or CacheSpec(source="echonet_dynamic")
  if spec.source != "echonet_dynamic":
    raise ValueError(
        f"an EchoNet-Dynamic cache needs source='echonet_dynamic', got {spec.source!r}"
    )
  return build_cache(root, out_dir, spec, **options)


def format_summary(summary: dict[str, Any]) -> str:
  """The human-readable summary printed at the end of a build."""
  failed = summary["failed"]
  lines = [
      f"videos written: {summary['written']} ({summary['shards_written']} shards; read from "
      f"their files: {summary['read']}, reused from the previous cache: {summary['reused']});"
      f" already done: {summary['skipped']} ({summary['shards_skipped']} shards)",
      f"videos failed: {sum(failed.values())}",
  ]
  lines += [f"  {kind}: {count}" for kind, count in sorted(failed.items())]
  changes = summary.get("changes")
  if changes:
    lines.append(
        f"changes since the previous build: {changes['added']} added, "
        f"{changes['removed']} removed, {changes['relabelled']} relabelled, "
        f"{changes['other_file']} with another file"
    )
  views = summary.get("views") or {}
  if views.get("dropped"):
    lines.append(f"rows left out by the views rule: {views['dropped']}")
  if views.get("unknown"):
    lines.append(f"warning: {views['unknown']} rows have no view and were kept")
  meta = summary["meta"]
  if meta.get("degenerate"):
    lines.append(
        "degenerate videos (kept, flagged in the index's quality column): "
        + ", ".join(f"{k}: {v}" for k, v in sorted(meta["degenerate"].items()))
    )
  lines.append(
      f"cache {summary['out_dir']}: {meta['splits']}, "
      f"{meta['shards_done']}/{meta['shards_expected']} shards done"
      + ("" if meta["complete"] else " (other machines or runs still to finish)")
  )
  lines.append(
      f"errors (all runs): {meta['failed']} in {summary['errors_csv']} " "(by labels CSV line)"
  )
  lines += views_lib.summary_lines(meta, summary["out_dir"])
  return "\n".join(lines)
