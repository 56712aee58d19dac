"""One entry point for any supported video file: DICOM or AVI, told apart by content, then extension.

``read_video(path, ...)`` returns an :class:`EchoClip` either way; ``list_files`` expands folders;
``native_image_size`` / ``resolve_image_size`` give a data source's own frame size for
``data.image_size = 0``; ``read_for_model`` reads a file as a trained model's config saw its data.
"""

from __future__ import annotations

import os
from typing import Any
from typing import Sequence

from echonet_jax.data import avi
from echonet_jax.data import dicom
from echonet_jax.data.clip import EchoClip

# ``data.image_size = 0`` means the source's native size: EchoNet-Dynamic's videos are 112 x 112;
# DICOM cines (and the phantom) use the paper's 299 x 299.
NATIVE_SIZE_DICOM = 299
NATIVE_SIZE_ECHONET_DYNAMIC = 112

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv")
# Files in a folder that are certainly not videos (labels, notes, pictures): left out of a listing.
_NOT_VIDEO = (
    ".csv",
    ".tsv",
    ".txt",
    ".json",
    ".md",
    ".npz",
    ".npy",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".pdf",
    ".xml",
    ".html",
    ".py",
    ".log",
)
# Keywords of read_video that only DICOMs take (the others go to avi.read_avi too).
_DICOM_ONLY = ("allow_non_ultrasound", "decoding_plugin")


def native_image_size(data: Any) -> int:
  """The native frame size of a config's data source (its ``data`` section)."""
  return NATIVE_SIZE_ECHONET_DYNAMIC if data.get("echonet_dynamic_dir") else NATIVE_SIZE_DICOM


def resolve_image_size(data: Any) -> int:
  """``data.image_size``, with 0 replaced by :func:`native_image_size`."""
  return int(data.image_size) or native_image_size(data)


def kind_of(path: str) -> str:
  """``"dicom"`` or ``"video"``: the DICM preamble or a RIFF/AVI header decide, else the extension.

  Anything unrecognised is ``"dicom"``, so that a non-video file reports NotDicomError.
  """
  try:
    with open(path, "rb") as f:
      head = f.read(132)
  except OSError:
    head = b""
  if head[128:132] == b"DICM":
    return "dicom"
  if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
    return "video"
  return "video" if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS else "dicom"


def read_video(
    path: str,
    num_frames: int = 20,
    interval_ms: float = 100,
    size: int = 299,
    *,
    avi_sector: str = "detect",
    fps: float | None = None,
    **options,
) -> EchoClip:
  """Reads a DICOM (:func:`dicom.read_echo`) or a video file (:func:`avi.read_avi`) into a clip.

  ``num_frames`` frames ``interval_ms`` apart, ``size`` px square, as both readers take them.
  ``options`` are :func:`dicom.read_echo`'s keywords, passed to it as given: ``default_fps`` (the
  frame rate assumed when the file has none; video files use it too), ``allow_non_ultrasound`` and
  ``decoding_plugin`` (DICOM only). ``avi_sector`` (:func:`avi.read_avi`'s ``sector``) and ``fps``
  apply to video files only. Raises an :class:`~echonet_jax.errors.EchoReadError` subclass naming
  the file and the reason.
  """
  path = str(path)
  if kind_of(path) == "video":
    shared = {k: v for k, v in options.items() if k not in _DICOM_ONLY}
    return avi.read_avi(path, num_frames, interval_ms, size, fps=fps, sector=avi_sector, **shared)
  return dicom.read_echo(path, num_frames, interval_ms, size, **options)


def read_for_model(path: str, data: Any) -> EchoClip:
  """Reads ``path`` as a model trained on ``data`` (a config's data section) saw its videos.

  A model trained on EchoNet-Dynamic saw whole 112-px frames, so its AVIs keep the whole frame
  (burned-in text outside the detected sector is still zeroed); other AVIs are cropped to their
  sector like DICOMs.
  """
  return read_video(
      path,
      num_frames=data.num_frames,
      interval_ms=data.interval_ms,
      size=resolve_image_size(data),
      default_fps=data.default_fps,
      avi_sector="mask" if data.get("echonet_dynamic_dir") else "detect",
  )


def list_files(inputs: Sequence[str]) -> list[str]:
  """Files named in ``inputs``, with folders expanded recursively (sorted, hidden files skipped).

  In folders, files that are certainly not videos (``.csv``, ``.txt``, ``.png``...) are left out;
  DICOMs without an extension and AVIs are kept. A path that does not exist is kept, so that reading
  it reports a FileMissingError for it.
  """
  files = []
  for path in inputs:
    if os.path.isdir(path):
      for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(
            os.path.join(root, n)
            for n in sorted(names)
            if not n.startswith(".") and not n.lower().endswith(_NOT_VIDEO)
        )
    else:
      files.append(path)
  return files
