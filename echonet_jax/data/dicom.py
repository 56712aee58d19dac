"""One echo DICOM file -> :class:`EchoClip`: sampled, masked, square grayscale frames.

Only the frames needed for the output are decoded. Frame timing comes from FrameTime,
FrameTimeVector, CineRate or RecommendedDisplayFrameRate, in that order, else from
``default_fps`` (recorded as ``fps_assumed``). Output frame ``i`` is the source frame nearest to
``i * interval_ms``; a clip shorter than ``num_frames * interval_ms`` is treated as a loop and
wraps around (cine loops are recorded over whole heart cycles). Nothing read from the file that
identifies the patient is kept, and error reasons never quote tag values.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import warnings
from typing import Any, Sequence

import cv2
import numpy as np

from echonet_jax.data import sector
from echonet_jax.data.clip import DEFAULT_FPS, EchoClip, positive_float, sample_indices  # pylint: disable=unused-import
from echonet_jax.errors import (DecodeError, EchoReadError, FileMissingError, MissingDecoderError,
                                NoFramesError, NoPixelDataError, NotDicomError, NotUltrasoundError,
                                TruncatedFileError, UnsupportedImageError)

# Standard DICOM modality codes; any other value is reported without being quoted.
_MODALITIES = frozenset(
    "US CT MR CR DX MG NM PT XA RF OT SC ES XC IVUS OCT OP SM IO PX RG DG BI GM ECG SR PR KO "
    "DOC SEG REG".split())
_GRAY = ("MONOCHROME1", "MONOCHROME2")


# ---------------------------------------------------------------------------------------------
# Timing.


def frame_times(ds: Any, num_frames: int, default_fps: float = DEFAULT_FPS
                ) -> tuple[np.ndarray, float, str]:
  """Source frame times in ms, the frame time and the tag it came from (or ``"default_fps"``)."""
  n = max(int(num_frames), 1)
  frame_time = positive_float(ds.get("FrameTime"))
  if frame_time is not None:
    return np.arange(n) * frame_time, frame_time, "FrameTime"
  vector = ds.get("FrameTimeVector")
  if vector is not None:
    try:
      steps = np.asarray([float(v) for v in (vector if isinstance(vector, Sequence) and
                                             not isinstance(vector, str) else [vector])])
    except (TypeError, ValueError):
      steps = np.zeros(0)
    if len(steps) == n - 1:  # some writers leave out the leading 0
      steps = np.concatenate([[0.0], steps])
    increments = steps[1:]
    if (len(steps) == n and np.all(np.isfinite(steps)) and np.all(increments >= 0)
        and (n == 1 or increments.sum() > 0)):
      times = np.cumsum(steps) - steps[0]
      frame_time = float(increments.mean()) if n > 1 else 1000.0 / default_fps
      return times, frame_time, "FrameTimeVector"
  for tag in ("CineRate", "RecommendedDisplayFrameRate"):
    fps = positive_float(ds.get(tag))
    if fps is not None:
      return np.arange(n) * (1000.0 / fps), 1000.0 / fps, tag
  frame_time = 1000.0 / default_fps
  return np.arange(n) * frame_time, frame_time, "default_fps"


# ---------------------------------------------------------------------------------------------
# Reading.


def _pydicom():
  import pydicom  # pylint: disable=g-import-not-at-top
  return pydicom


@contextlib.contextmanager
def quiet_pydicom():
  """Keeps pydicom from logging or warning while we read: its messages quote tag values."""
  config = _pydicom().config
  logger = logging.getLogger("pydicom")
  mode, disabled = config.settings.reading_validation_mode, logger.disabled
  config.settings.reading_validation_mode = config.IGNORE
  logger.disabled = True
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      yield
  finally:
    config.settings.reading_validation_mode = mode
    logger.disabled = disabled


_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_PIXEL_TAG_BE = b"\x7f\xe0\x00\x10"


def _file_mentions_pixel_data(path: str) -> bool:
  with open(path, "rb") as f:
    data = f.read()
  return _PIXEL_TAG_LE in data or _PIXEL_TAG_BE in data


def read_dataset(path: str, allow_non_ultrasound: bool = False) -> Any:
  """Reads and validates a DICOM file; raises an :class:`EchoReadError` subclass when unusable."""
  pydicom = _pydicom()
  path = str(path)
  if not os.path.exists(path):
    raise FileMissingError(path, "file does not exist")
  if os.path.isdir(path):
    raise NotDicomError(path, "is a folder, not a DICOM file")
  try:
    with quiet_pydicom():
      ds = pydicom.dcmread(path)
  except pydicom.errors.InvalidDicomError:
    raise NotDicomError(path, "not a DICOM file (no DICM preamble)") from None
  except (EOFError, OSError, ValueError, KeyError, TypeError, struct.error) as e:
    raise TruncatedFileError(
        path, f"could not parse the DICOM header, the file may be truncated ({type(e).__name__})"
    ) from None
  if "PixelData" not in ds:
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
      raise UnsupportedImageError(path, "float pixel data is not an ultrasound image")
    if _file_mentions_pixel_data(path):
      raise TruncatedFileError(path, "the file ends inside its pixel data (truncated)")
    raise NoPixelDataError(path, "the dataset has no pixel data (or the file is truncated "
                                 "before it)")
  modality = str(ds.get("Modality", "")).strip().upper()
  if modality != "US" and not allow_non_ultrasound:
    if modality in _MODALITIES:
      shown = repr(modality)
    else:  # not a standard code: it could be anything, so do not quote it
      shown = "unknown" if modality else "missing"
    raise NotUltrasoundError(
        path, f"modality is {shown}, not 'US' (pass allow_non_ultrasound to read it anyway)")
  raw_frames = ds.get("NumberOfFrames", 1)
  try:
    num_frames = int(raw_frames) if raw_frames not in (None, "") else 1
  except (TypeError, ValueError):
    raise NoFramesError(path, "NumberOfFrames is not a number") from None
  if num_frames < 1 or len(ds.PixelData) == 0:
    raise NoFramesError(path, "the dataset holds zero frames")
  if "Rows" not in ds or "Columns" not in ds or not ds.Rows or not ds.Columns:
    raise NoPixelDataError(path, "the dataset has no image size (Rows/Columns)")
  return ds


def num_frames_of(ds: Any) -> int:
  """NumberOfFrames of ``ds`` (1 when absent)."""
  value = ds.get("NumberOfFrames", 1)
  return int(value) if value not in (None, "") else 1


def _palette_luma_table(ds: Any) -> np.ndarray:
  from pydicom.pixels import apply_color_lut  # pylint: disable=g-import-not-at-top
  bits = int(ds.BitsStored)
  entries = np.arange(2 ** bits, dtype=np.uint16 if bits > 8 else np.uint8)
  rgb = apply_color_lut(entries, ds)
  luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
  if rgb.max() > 255:  # 16-bit entries; some files put 8-bit values into 16-bit tables
    luma /= 257.0
  return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def _to_uint8(arr: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
  if arr.dtype == np.uint8:
    return arr
  arr = arr.astype(np.float32)
  if signed:
    arr += 2.0 ** (bits_stored - 1)
  return np.clip(np.rint(arr * (255.0 / (2.0 ** bits_stored - 1))), 0, 255).astype(np.uint8)


def to_luma(arr: np.ndarray, photometric: str, ds: Any, palette: np.ndarray | None = None
            ) -> np.ndarray:
  """One decoded frame -> (H, W) uint8 luma (Y of BT.601, as in YBR_FULL)."""
  bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
  signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
  if photometric == "PALETTE COLOR":
    if palette is None:
      palette = _palette_luma_table(ds)
    index = arr.astype(np.int64) if signed else arr
    return palette[np.clip(index, 0, len(palette) - 1)]
  if photometric.startswith("YBR"):  # Y is luma already; no conversion to RGB needed
    return _to_uint8(np.ascontiguousarray(arr[..., 0]), bits, False)
  if photometric == "RGB":
    rgb = _to_uint8(arr, bits, False)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
  if photometric in _GRAY:
    if arr.ndim == 3:
      arr = arr[..., 0]
    gray = _to_uint8(arr, bits, signed)
    return 255 - gray if photometric == "MONOCHROME1" else gray
  raise ValueError(f"photometric interpretation {photometric!r} is not supported")


def decode_frames(ds: Any, indices: Sequence[int], path: str = "", decoding_plugin: str = ""
                  ) -> np.ndarray:
  """Decodes only the source frames ``indices`` of ``ds`` -> (len(indices), H, W) uint8 luma."""
  from pydicom import uid as pydicom_uid  # pylint: disable=g-import-not-at-top
  from pydicom.pixels import get_decoder  # pylint: disable=g-import-not-at-top
  tsyntax = ds.file_meta.get("TransferSyntaxUID")
  if tsyntax is None:
    raise MissingDecoderError(path, "the file has no transfer syntax")
  # Only a standard UID's name is quoted: an unknown one is the file's own text.
  syntax = repr(tsyntax.name) if tsyntax in pydicom_uid.UID_dictionary else "(non-standard UID)"
  try:
    decoder = get_decoder(tsyntax)
  except NotImplementedError:
    raise MissingDecoderError(path, f"no decoder exists for transfer syntax {syntax}") from None
  if not decoder.is_available:
    raise MissingDecoderError(
        path, f"transfer syntax {syntax} needs a decoding plugin that is not installed")
  if not decoding_plugin and "pylibjpeg" in decoder.available_plugins and tsyntax.is_compressed:
    decoding_plugin = "pylibjpeg"  # about 1.5x faster than pillow on JPEG baseline
  palette = None
  out = []
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      for arr, meta in decoder.iter_array(ds, indices=list(indices), raw=True,
                                          decoding_plugin=decoding_plugin):
        photometric = str(meta.get("photometric_interpretation", ds.PhotometricInterpretation))
        if photometric == "PALETTE COLOR" and palette is None:
          palette = _palette_luma_table(ds)
        out.append(to_luma(arr, photometric, ds, palette))
  except ValueError as e:
    if "less than expected" in str(e):
      raise TruncatedFileError(path, "the pixel data is shorter than the image size says "
                                     "(truncated file)") from None
    if "photometric interpretation" in str(e):
      raise UnsupportedImageError(path, str(e)) from None
    raise DecodeError(path, f"decoding failed ({type(e).__name__})") from None
  except EchoReadError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Decoder plugins raise assorted types; the message may quote bytes, so keep only the type.
    raise DecodeError(path, f"decoding failed ({type(e).__name__})") from None
  return np.stack(out)


def ultrasound_regions(ds: Any) -> list[tuple[int, int, int, int]]:
  """(x0, y0, x1, y1) of the 2-D tissue regions of SequenceOfUltrasoundRegions (any 2-D region
  when none is tissue); empty when the sequence is missing."""
  regions = []
  for item in ds.get("SequenceOfUltrasoundRegions", None) or []:
    try:
      box = tuple(int(item[k].value) for k in ("RegionLocationMinX0", "RegionLocationMinY0",
                                                "RegionLocationMaxX1", "RegionLocationMaxY1"))
    except (KeyError, TypeError, ValueError):
      continue
    regions.append((int(item.get("RegionSpatialFormat", 0) or 0),
                    int(item.get("RegionDataType", 0) or 0), box))
  two_d = [r for r in regions if r[0] == 1]
  tissue = [box for _, kind, box in two_d if kind == 1]
  return tissue or [box for _, _, box in two_d]


_LOSSY_SYNTAXES = frozenset((
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",  # JPEG baseline, extended
    "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91",  # JPEG-LS near-lossless, JPEG 2000
    "1.2.840.10008.1.2.4.203",  # HTJ2K
))


def is_lossy(ds: Any) -> bool:
  """True when the pixels went through lossy compression (per transfer syntax or the
  LossyImageCompression tag)."""
  tsyntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
  return tsyntax in _LOSSY_SYNTAXES or str(ds.get("LossyImageCompression", "")).strip() == "01"


def list_files(inputs: Sequence[str]) -> list[str]:
  """Files named in ``inputs``, with folders expanded recursively (sorted, hidden files skipped).

  A path that does not exist is kept, so that reading it reports a FileMissingError for it.
  """
  files = []
  for path in inputs:
    if os.path.isdir(path):
      for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
    else:
      files.append(path)
  return files


def read_echo(path: str, num_frames: int = 20, interval_ms: float = 100, size: int = 299, *,
              default_fps: float = DEFAULT_FPS, allow_non_ultrasound: bool = False,
              decoding_plugin: str = "") -> EchoClip:
  """Reads one echo DICOM into a masked, sampled, square clip (see module docstring).

  Raises an :class:`EchoReadError` subclass naming the file and the reason.
  """
  path = str(path)
  with quiet_pydicom():
    return _read_echo(path, num_frames, interval_ms, size, default_fps, allow_non_ultrasound,
                      decoding_plugin)


def _read_echo(path, num_frames, interval_ms, size, default_fps, allow_non_ultrasound,
               decoding_plugin) -> EchoClip:
  ds = read_dataset(path, allow_non_ultrasound=allow_non_ultrasound)
  n_source = num_frames_of(ds)
  times, frame_time, timing_source = frame_times(ds, n_source, default_fps)
  indices = sample_indices(times, frame_time, num_frames, interval_ms)
  unique, inverse = np.unique(indices, return_inverse=True)
  luma = decode_frames(ds, unique.tolist(), path, decoding_plugin)
  region = sector.region_box_mask(ultrasound_regions(ds), luma.shape[1:])
  margin = sector.LOSSY_NOISE_MARGIN if is_lossy(ds) else 0
  found = sector.find_sector(luma, region, noise_margin=margin)
  mask = found.mask
  geometry = sector.geometry_from_mask(mask, quality=found.quality, shape=found.shape)
  frames = sector.apply_geometry(sector.mask_outside(luma, mask), geometry, size, "area")
  return EchoClip(frames=frames[inverse.reshape(-1)], frame_indices=indices,
                  frame_time_ms=float(frame_time), fps_assumed=timing_source == "default_fps",
                  sector_mask=mask, geometry=geometry, source=path, num_source_frames=n_source,
                  timing_source=timing_source)
