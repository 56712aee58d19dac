"""One echo DICOM file -> :class:`EchoClip`: sampled, masked, square grayscale frames.

The header is checked against the pixel data before anything scales with NumberOfFrames, and only
the frames needed for the output are decoded. Frame timing comes from FrameTime, FrameTimeVector,
CineRate or RecommendedDisplayFrameRate, in that order (a frame time outside 1-1,000 ms counts as
missing, with a warning), else from ``default_fps`` (recorded as ``fps_assumed``). Output frame
``i`` is the source frame nearest to ``i * interval_ms``; a clip shorter than
``num_frames * interval_ms`` is treated as a loop and wraps around (cine loops are recorded over
whole heart cycles). Nothing read from the file that
identifies the patient is kept, and error reasons never quote tag values.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import struct
from typing import Any
from typing import Sequence
import warnings

import numpy as np
import pydicom
from pydicom import uid as pydicom_uid
from pydicom.pixels import get_decoder

from echonet_jax.data import luma
from echonet_jax.data import sector

# Re-exported for callers that know only this module: DEFAULT_FPS, EchoClip, sample_indices...
from echonet_jax.data.clip import DEFAULT_FPS  # pylint: disable=unused-import
from echonet_jax.data.clip import EchoClip  # pylint: disable=unused-import
from echonet_jax.data.clip import Timing  # pylint: disable=unused-import
from echonet_jax.data.clip import default_timing  # pylint: disable=unused-import
from echonet_jax.data.clip import plausible_frame_time  # pylint: disable=unused-import
from echonet_jax.data.clip import positive_float  # pylint: disable=unused-import
from echonet_jax.data.clip import sample_timing  # pylint: disable=unused-import
from echonet_jax.errors import DecodeError
from echonet_jax.errors import EchoReadError
from echonet_jax.errors import FileMissingError
from echonet_jax.errors import MissingDecoderError
from echonet_jax.errors import NoFramesError
from echonet_jax.errors import NoPixelDataError
from echonet_jax.errors import NotDicomError
from echonet_jax.errors import NotUltrasoundError
from echonet_jax.errors import TruncatedFileError
from echonet_jax.errors import UnsupportedImageError

# Standard DICOM modality codes; any other value is reported without being quoted.
_MODALITIES = frozenset(
    "US CT MR CR DX MG NM PT XA RF OT SC ES XC IVUS OCT OP SM IO PX RG DG BI GM ECG SR PR KO "
    "DOC SEG REG".split())


# ---------------------------------------------------------------------------------------------
# Timing.


def _vector_times(ds: Any, n: int) -> np.ndarray | None:
  """Cumulative times of FrameTimeVector, or None when absent or unusable."""
  vector = ds.get("FrameTimeVector")
  if vector is None:
    return None
  values = vector if isinstance(vector, Sequence) and not isinstance(vector, str) else [vector]
  if len(values) not in (n, n - 1):  # checked before converting: the length is the file's claim
    return None
  try:
    steps = np.asarray([float(v) for v in values])
  except (TypeError, ValueError):
    return None
  if len(steps) == n - 1:  # some writers leave out the leading 0
    steps = np.concatenate([[0.0], steps])
  increments = steps[1:]
  if not (np.all(np.isfinite(steps)) and np.all(increments >= 0)
          and (n == 1 or increments.sum() > 0)):
    return None
  return np.cumsum(steps) - steps[0]


def frame_timing(ds: Any, num_frames: int, default_fps: float = DEFAULT_FPS) -> Timing:
  """The timing of ``ds``'s ``num_frames`` source frames (see the module docstring).

  A frame time outside 1-1,000 ms (from any tag) counts as missing and falls through to the next
  tag; when none is left, ``default_fps`` is assumed and ``source`` says which tags were rejected.
  """
  n = max(int(num_frames), 1)
  rejected = []
  frame_time = positive_float(ds.get("FrameTime"))
  if frame_time is not None:
    if plausible_frame_time(frame_time):
      return Timing(frame_time, "FrameTime", False)
    rejected.append("FrameTime")
  times = _vector_times(ds, n)
  if times is not None:
    if n == 1:
      return Timing(1000.0 / default_fps, "FrameTimeVector", False, times)
    mean = float(times[-1] / (n - 1))
    if plausible_frame_time(mean):
      return Timing(mean, "FrameTimeVector", False, times)
    rejected.append("FrameTimeVector")
  for tag in ("CineRate", "RecommendedDisplayFrameRate"):
    fps = positive_float(ds.get(tag))
    if fps is not None:
      if plausible_frame_time(1000.0 / fps):
        return Timing(1000.0 / fps, tag, False)
      rejected.append(tag)
  return default_timing(default_fps, rejected)


# ---------------------------------------------------------------------------------------------
# Reading.


def _pydicom():
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
  check_pixel_extent(ds, num_frames, path)
  return ds


# No ultrasound frame comes near this (8192 x 8192); a larger header is corrupt or hostile.
MAX_FRAME_PIXELS = 1 << 26
_BITS_ALLOCATED = (1, 8, 16, 32, 64)


def _frame_bytes(ds: Any, rows: int, cols: int, samples: int, bits: int) -> float:
  """Bytes of one native (uncompressed) frame; fractional for 1-bit data."""
  size = rows * cols * samples * bits / 8
  if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
    size = size / 3 * 2  # two chroma samples shared by each pair of pixels
  return size


def check_pixel_extent(ds: Any, num_frames: int, path: str = "") -> None:
  """Refuses a header whose frame count or image size the pixel data cannot hold.

  Runs before anything scales with NumberOfFrames: native data must hold NumberOfFrames x Rows x
  Columns x SamplesPerPixel x BitsAllocated / 8 bytes; encapsulated data at least one fragment per
  frame. A header claiming 2 billion frames over 64 bytes is thus one error, in microseconds.
  """
  rows, cols = int(ds.Rows), int(ds.Columns)
  try:
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 8) or 8)
  except (TypeError, ValueError):
    raise UnsupportedImageError(path, "SamplesPerPixel or BitsAllocated is not a number") from None
  if not 1 <= samples <= 4 or bits not in _BITS_ALLOCATED:
    raise UnsupportedImageError(
        path, f"{samples} samples per pixel of {bits} bits is not an image layout we can read")
  if rows * cols > MAX_FRAME_PIXELS:
    raise UnsupportedImageError(path, f"an image of {rows} x {cols} pixels is implausible "
                                      f"(more than {MAX_FRAME_PIXELS} per frame): corrupt header")
  tsyntax = ds.file_meta.get("TransferSyntaxUID")
  payload = len(ds.PixelData)
  if tsyntax is None or not tsyntax.is_encapsulated:
    needed = math.ceil(num_frames * _frame_bytes(ds, rows, cols, samples, bits))
    if payload < needed:
      raise TruncatedFileError(
          path, f"the pixel data holds {payload} bytes but {num_frames} frames of {rows} x {cols}"
                f" x {samples} at {bits} bits need {needed} (truncated file or corrupt header)")
    return
  if tsyntax in pydicom_uid.MPEGTransferSyntaxes:
    return  # one stream for all frames; these fail later as MissingDecoderError
  fragments = _count_fragments(ds.PixelData, "<" if tsyntax.is_little_endian else ">")
  if fragments is None:
    raise TruncatedFileError(path, "the encapsulated pixel data is malformed (truncated file?)")
  if fragments < num_frames:
    raise TruncatedFileError(
        path, f"the pixel data holds {fragments} compressed fragments, fewer than the "
              f"{num_frames} frames the header claims (truncated file or corrupt header)")


def _count_fragments(data: bytes, endianness: str) -> int | None:
  """Fragments of encapsulated pixel data after the Basic Offset Table; None when malformed.

  Walks the item headers only (O(fragments), no copy of the data).
  """
  item = struct.Struct(endianness + "HHI")
  position, count, first = 0, 0, True
  while position + 8 <= len(data):
    group, element, length = item.unpack_from(data, position)
    if (group, element) == (0xFFFE, 0xE0DD):  # sequence delimiter
      break
    if (group, element) != (0xFFFE, 0xE000) or position + 8 + length > len(data):
      return None
    position += 8 + length
    count += 0 if first else 1  # the first item is the Basic Offset Table
    first = False
  return None if first else count


def num_frames_of(ds: Any) -> int:
  """NumberOfFrames of ``ds`` (1 when absent)."""
  value = ds.get("NumberOfFrames", 1)
  return int(value) if value not in (None, "") else 1


def decode_frames(ds: Any, indices: Sequence[int], path: str = "", decoding_plugin: str = ""
                  ) -> np.ndarray:
  """Decodes only the source frames ``indices`` of ``ds`` -> (len(indices), H, W) uint8 luma."""
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
          palette = luma.palette_luma_table(ds)
        out.append(luma.to_luma(arr, photometric, ds, palette))
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
    try:  # a malformed item (text where a number belongs) is skipped, not fatal
      box = tuple(int(item[k].value) for k in ("RegionLocationMinX0", "RegionLocationMinY0",
                                                "RegionLocationMaxX1", "RegionLocationMaxY1"))
      regions.append((int(item.get("RegionSpatialFormat", 0) or 0),
                      int(item.get("RegionDataType", 0) or 0), box))
    except (KeyError, TypeError, ValueError, AttributeError):
      continue
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
  timing = frame_timing(ds, n_source, default_fps)
  indices = sample_timing(timing, n_source, num_frames, interval_ms)
  unique, inverse = np.unique(indices, return_inverse=True)
  decoded = decode_frames(ds, unique.tolist(), path, decoding_plugin)
  region = sector.region_box_mask(ultrasound_regions(ds), decoded.shape[1:])
  margin = sector.LOSSY_NOISE_MARGIN if is_lossy(ds) else 0
  found = sector.find_sector(decoded, region, noise_margin=margin)
  mask = found.mask
  geometry = sector.geometry_from_mask(mask, quality=found.quality, shape=found.shape)
  frames = sector.apply_geometry(sector.mask_outside(decoded, mask), geometry, size, "area")
  return EchoClip(frames=frames[inverse.reshape(-1)], frame_indices=indices,
                  frame_time_ms=float(timing.frame_time_ms), fps_assumed=timing.assumed,
                  sector_mask=mask, geometry=geometry, source=path, num_source_frames=n_source,
                  timing_source=timing.source)
