"""The de-identified video cache: ArrayRecord shards of one record per video, plus ``meta.json``.

Layout of a cache folder::

  CACHE/meta.json                          image_size, num_frames, interval_ms, label stats, counts
  CACHE/<split>-<k:05d>-of-<n:05d>.array_record    records of one split (train, val, test)
  CACHE/<split>-<k:05d>-of-<n:05d>.index.csv       one row per record of that shard: ids, view,
                                                   quality, labels
  CACHE/errors.csv                          rows that failed: labels CSV line, video_id, error

A record is one video, serialised by :func:`encode_record` (a JSON header followed by raw arrays, so
decoding needs no pickle; frames are zlib-compressed one by one so one frame decodes alone). Its fields:

* ``video_id``, ``patient_id``, ``study_id``, ``split``: strings from the labels CSV only, never from
  DICOM tags;
* ``frames``: uint8 (T, S, S), masked, grayscale (luma);
* ``frame_indices``: int32 (T,), the source frame of each output frame;
* ``frame_time_ms``: float; ``fps_assumed``: bool (True when the file carried no timing);
* ``labels``: {task name: float}, NaN where the CSV left the label blank;
* optional ``masks``: uint16 (T, S, S) bit field of ground-truth regions aligned with ``frames``
  (bit k is ``mask_names[k]``), written for phantom studies;
* optional ``view``: the view label (e.g. ``A4C``) when known, with ``view_source`` (``csv`` or
  ``predicted``) and ``view_confidence`` (1.0 for csv, blank when unknown); see ``data/views.py``;
* ``quality``: the sector detection's verdict ("ok", or why the video is degenerate);
* ``pixel_key``: a hash of the row's source file and mask paths (never the paths themselves), so
  that a rebuild can reuse the pixels of an unchanged file.

No record, index or meta field holds a file or folder name.

``meta.json`` holds at least: ``format`` (1), ``image_size``, ``num_frames``, ``interval_ms``,
``source`` ("labels_csv", "phantom" or "echonet_dynamic"), ``splits`` ({split: number of videos}),
``label_stats`` ({task: {mean, std, n}} over the TRAIN split, used to standardise regression targets)
and, when records carry masks, ``mask_names``.

The ``.index.csv`` sidecar lets readers select videos (by label availability, view, patient) without
decoding frames; :func:`read_index` numbers its rows in the order Grain's ArrayRecordDataSource sees them.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import struct
from typing import Any
from typing import Iterable
from typing import Sequence
import zlib

from array_record.python import array_record_module
import grain
import numpy as np

from echonet_jax.errors import CacheError

SPLITS = ("train", "val", "test")
META_FILE = "meta.json"
_ARRAY_FIELDS = ("frames", "frame_indices", "masks")
_PER_FRAME_FIELDS = ("frames", "masks")
_MAGIC = b"ECV1"


def encode_record(record: dict[str, Any]) -> bytes:
  """Serialises one video record (see module docstring) to bytes.

  ``frames`` and ``masks`` are stored frame by frame, each zlib-compressed (level 1), so that a
  reader that needs one frame (training samples one frame per video) decompresses only that one.
  The ArrayRecord container itself is left uncompressed.
  """
  header: dict[str, Any] = {}
  blobs = []
  offset = 0
  for key, value in record.items():
    if key in _ARRAY_FIELDS:
      if value is None:
        continue
      arr = np.ascontiguousarray(value)
      spec = {"dtype": arr.dtype.str, "shape": list(arr.shape), "offset": offset}
      if key in _PER_FRAME_FIELDS:
        chunks = [zlib.compress(frame.tobytes(), 1) for frame in arr]
        spec["chunks"] = [len(c) for c in chunks]
        raw = b"".join(chunks)
      else:
        raw = arr.tobytes()
      spec["nbytes"] = len(raw)
      header.setdefault("_arrays", {})[key] = spec
      blobs.append(raw)
      offset += len(raw)
    elif key == "labels":
      # JSON has no NaN; store missing labels as null.
      header["labels"] = {
          k: (None if v is None or math.isnan(float(v)) else float(v)) for k, v in value.items()
      }
    else:
      header[key] = value.item() if isinstance(value, np.generic) else value
  head = json.dumps(header, sort_keys=True).encode()
  return _MAGIC + struct.pack("<I", len(head)) + head + b"".join(blobs)


def _header(data: bytes) -> tuple[dict[str, Any], int]:
  if data[:4] != _MAGIC:
    raise ValueError("not an echonet-jax cache record (bad magic)")
  (head_len,) = struct.unpack("<I", data[4:8])
  return json.loads(data[8 : 8 + head_len]), 8 + head_len


def record_header(data: bytes) -> dict[str, Any]:
  """The JSON header of an encoded record (ids, labels, array specs) without decoding arrays."""
  return _header(data)[0]


def relabel_record(data: bytes, updates: dict[str, Any]) -> bytes:
  """An encoded record with header fields replaced by ``updates`` (ids, split, view, labels);
  the frames and masks are copied byte for byte, so nothing is decoded or recompressed."""
  header, base = _header(data)
  for key, value in updates.items():
    if key in _ARRAY_FIELDS:
      raise ValueError(f"relabel_record cannot replace the array {key!r}")
    if key == "labels":
      value = {
          k: (None if v is None or math.isnan(float(v)) else float(v)) for k, v in value.items()
      }
    header[key] = value
  head = json.dumps(header, sort_keys=True).encode()
  return _MAGIC + struct.pack("<I", len(head)) + head + data[base:]


def num_frames(data: bytes) -> int:
  """The number of frames of an encoded record, read from its header only."""
  header, _ = _header(data)
  return int(header["_arrays"]["frames"]["shape"][0])


def _decode_array(
    data: bytes, base: int, spec: dict[str, Any], frames: Sequence[int] | None
) -> np.ndarray:
  dtype, shape = np.dtype(spec["dtype"]), spec["shape"]
  start = base + spec["offset"]
  if "chunks" not in spec:
    arr = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=start)
    arr = arr.reshape(shape)
    return arr if frames is None else arr[list(frames)]
  bounds = np.concatenate([[0], np.cumsum(spec["chunks"])]) + start
  wanted = range(shape[0]) if frames is None else frames
  out = np.empty((len(wanted), *shape[1:]), dtype)
  for i, f in enumerate(wanted):
    out[i] = np.frombuffer(zlib.decompress(data[bounds[f] : bounds[f + 1]]), dtype).reshape(
        shape[1:]
    )
  return out


def decode_record(data: bytes, frames: Sequence[int] | None = None) -> dict[str, Any]:
  """Inverse of :func:`encode_record`; with ``frames``, decodes only those frames (and masks)."""
  header, base = _header(data)
  record = {k: v for k, v in header.items() if k != "_arrays"}
  if "labels" in record:
    record["labels"] = {k: (math.nan if v is None else v) for k, v in record["labels"].items()}
  for key, spec in header.get("_arrays", {}).items():
    record[key] = _decode_array(data, base, spec, frames if key in _PER_FRAME_FIELDS else None)
  return record


def shard_name(split: str, index: int, num_shards: int) -> str:
  """The file name of shard ``index`` of ``num_shards`` of ``split``."""
  return f"{split}-{index:05d}-of-{num_shards:05d}.array_record"


def shard_paths(cache_dir: str, split: str) -> list[str]:
  """The finished shard files of ``split``, sorted; raises FileNotFoundError when there are none."""
  paths = sorted(glob.glob(os.path.join(cache_dir, f"{split}-*-of-*.array_record")))
  if not paths:
    raise FileNotFoundError(f"{cache_dir}: no cache shards for split {split!r}")
  return paths


INDEX_COLUMNS = (
    "video_id",
    "patient_id",
    "study_id",
    "split",
    "view",
    "num_frames",
    "quality",
    "pixel_key",
    "view_source",
    "view_confidence",
)


def index_path(shard_path: str) -> str:
  """The ``.index.csv`` sidecar of a shard file."""
  return shard_path[: -len(".array_record")] + ".index.csv"


def _index_row(data: bytes) -> dict[str, Any]:
  header = record_header(data)
  row = {k: header.get(k, "") for k in INDEX_COLUMNS}
  row["num_frames"] = int(header["_arrays"]["frames"]["shape"][0])
  for name, value in (header.get("labels") or {}).items():
    row[f"label:{name}"] = "" if value is None else repr(float(value))
  return row


def write_shard(path: str, records: Iterable[dict[str, Any] | bytes]) -> int:
  """Writes records (dicts, or records already encoded) to one ArrayRecord file and its index
  sidecar; returns the count.

  Both files are written to temporary names first and the shard is renamed last, so a shard file
  that exists is complete (resumable writers can skip it).
  """
  if not path.endswith(".array_record"):
    raise ValueError(f"{path}: a cache shard must end in .array_record")
  tmp = path + ".tmp"
  rows = []
  # Frames are compressed inside the record; compressing the container again only costs reads.
  writer = array_record_module.ArrayRecordWriter(tmp, "group_size:1,uncompressed")
  try:
    for record in records:
      data = record if isinstance(record, bytes) else encode_record(record)
      writer.write(data)
      rows.append(_index_row(data))
  finally:
    writer.close()
  columns = list(INDEX_COLUMNS) + sorted({k for r in rows for k in r if k.startswith("label:")})
  with open(index_path(path) + ".tmp", "w", newline="") as f:
    w = csv.DictWriter(f, columns, restval="")
    w.writeheader()
    w.writerows(rows)
  os.replace(index_path(path) + ".tmp", index_path(path))
  os.replace(tmp, path)
  return len(rows)


def read_shard_index(shard: str) -> list[dict[str, Any]]:
  """The ``.index.csv`` rows of one shard (INDEX_COLUMNS, ``num_frames`` int, ``labels``)."""
  try:
    with open(index_path(shard), newline="") as f:
      rows = list(csv.DictReader(f))
  except OSError as e:
    raise CacheError(
        f"{index_path(shard)}: cannot read the shard's index ({e.strerror or e}); "
        "delete the shard and rebuild the cache"
    ) from None
  out = []
  for row in rows:
    labels = {
        k[len("label:") :]: (float(v) if v != "" else math.nan)
        for k, v in row.items()
        if k.startswith("label:")
    }
    entry = {k: row.get(k) or "" for k in INDEX_COLUMNS}
    entry.update(
        num_frames=int(row["num_frames"]), labels=labels, quality=row.get("quality") or "ok"
    )
    out.append(entry)
  return out


def read_index(cache_dir: str, split: str) -> list[dict[str, Any]]:
  """One dict per record of ``split``, in ArrayRecordDataSource order over :func:`shard_paths`.

  Each dict has the INDEX_COLUMNS, ``record`` (its global position in the split), ``num_frames`` as
  int and ``labels`` ({task: float}, NaN where blank).
  """
  out = []
  for shard in shard_paths(cache_dir, split):
    for entry in read_shard_index(shard):
      entry["record"] = len(out)
      out.append(entry)
  return out


def _damaged(path: str, error: BaseException) -> CacheError:
  reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
  return CacheError(
      f"{path}: the cache shard is truncated or corrupt ({reason}); delete it and "
      "rebuild the cache"
  )


def open_records(paths: Sequence[str]):
  """A Grain ArrayRecordDataSource over shard files; a damaged shard raises CacheError naming it."""
  paths = list(paths)
  try:
    return grain.sources.ArrayRecordDataSource(paths)
  except Exception as e:  # pylint: disable=broad-except
    for path in paths:  # name the culprit
      try:
        grain.sources.ArrayRecordDataSource([path])
      except Exception as inner:  # pylint: disable=broad-except
        raise _damaged(path, inner) from None
    raise _damaged(paths[0] if len(paths) == 1 else f"{paths[0]}..", e) from None


def read_record(source, paths: Sequence[str], position: int) -> bytes:
  """``source[position]``; a read failure raises CacheError naming the shard that holds it."""
  try:
    return source[position]
  except Exception as e:  # pylint: disable=broad-except
    start = 0
    for path in paths:
      count = len(read_shard_index(path))
      if position < start + count:
        raise _damaged(path, e) from None
      start += count
    raise _damaged(str(paths[-1]), e) from None


def example_record(
    i: int, frames: np.ndarray, labels: dict[str, float], **fields: Any
) -> dict[str, Any]:
  """A record of made-up video ``i`` (for tests and benchmarks): ids ``v{i}``, ``p{i}``, ``s{i}``,
  train split, view A4C, ``frames`` 100 ms apart (none assumed); ``fields`` replace any field."""
  return {
      "video_id": f"v{i}",
      "patient_id": f"p{i}",
      "study_id": f"s{i}",
      "split": "train",
      "view": "A4C",
      "frames": frames,
      "frame_indices": np.arange(len(frames), dtype=np.int32),
      "frame_time_ms": 100.0,
      "fps_assumed": False,
      "labels": labels,
      **fields,
  }


def read_shard(path: str) -> list[dict[str, Any]]:
  """All records of one shard file (for tests and small tools; training reads through Grain)."""
  source = open_records([path])
  return [decode_record(read_record(source, [path], i)) for i in range(len(source))]


def write_meta(cache_dir: str, meta: dict[str, Any]) -> None:
  """Writes ``meta.json`` atomically."""
  path = os.path.join(cache_dir, META_FILE)
  with open(path + ".tmp", "w") as f:
    json.dump(meta, f, indent=2, sort_keys=True)
  os.replace(path + ".tmp", path)


def read_meta(cache_dir: str) -> dict[str, Any]:
  """The cache's meta.json; raises FileNotFoundError naming the folder when it is not a cache."""
  path = os.path.join(cache_dir, META_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{cache_dir}: not an echonet-jax cache (no {META_FILE})")
  with open(path) as f:
    return json.load(f)


def label_stats(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
  """Mean, std and count of each label over ``records`` (NaNs skipped), for target standardisation."""
  values: dict[str, list[float]] = {}
  for record in records:
    for name, value in record.get("labels", {}).items():
      if not math.isnan(value):
        values.setdefault(name, []).append(value)
  stats = {}
  for name, vals in values.items():
    arr = np.asarray(vals, np.float64)
    stats[name] = {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}
  return stats
