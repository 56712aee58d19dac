"""One echo DICOM file -> :class:`EchoClip`: sampled, masked, square grayscale frames.

The header is checked against the pixel data before anything scales with NumberOfFrames
(:mod:`echonet_jax.data.dicom_header`), and only the frames needed for the output are decoded.
Frame timing comes from FrameTime, FrameTimeVector, CineRate or RecommendedDisplayFrameRate, in
that order (a frame time outside 1-1,000 ms counts as missing, with a warning), else from
``default_fps`` (recorded as ``fps_assumed``). Output frame ``i`` is the source frame nearest to
``i * interval_ms``; a clip shorter than ``num_frames * interval_ms`` is treated as a loop and wraps
around (cine loops are recorded over whole heart cycles). Nothing read from the file that
identifies the patient is kept, and error reasons never quote tag values.
"""

from __future__ import annotations

from typing import Any
from typing import Sequence
import warnings

import numpy as np
from pydicom import uid as pydicom_uid
from pydicom.pixels import get_decoder

from echonet_jax.data import dicom_header
from echonet_jax.data import luma
from echonet_jax.data import sector

# Re-exported for callers that know only this module: DEFAULT_FPS, EchoClip, sample_indices...
from echonet_jax.data.clip import DEFAULT_FPS  # pylint: disable=unused-import
from echonet_jax.data.clip import EchoClip  # pylint: disable=unused-import
from echonet_jax.data.clip import Timing  # pylint: disable=unused-import
from echonet_jax.data.clip import default_timing  # pylint: disable=unused-import
from echonet_jax.data.clip import make_clip
from echonet_jax.data.clip import plausible_frame_time  # pylint: disable=unused-import
from echonet_jax.data.clip import positive_float  # pylint: disable=unused-import
from echonet_jax.data.clip import sample_timing  # pylint: disable=unused-import
from echonet_jax.errors import DecodeError
from echonet_jax.errors import EchoReadError
from echonet_jax.errors import MissingDecoderError
from echonet_jax.errors import TruncatedFileError
from echonet_jax.errors import UnsupportedImageError

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
  if not (
      np.all(np.isfinite(steps)) and np.all(increments >= 0) and (n == 1 or increments.sum() > 0)
  ):
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
# Decoding and reading.


def decode_frames(
    ds: Any, indices: Sequence[int], path: str = "", decoding_plugin: str = ""
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
        path, f"transfer syntax {syntax} needs a decoding plugin that is not installed"
    )
  if not decoding_plugin and "pylibjpeg" in decoder.available_plugins and tsyntax.is_compressed:
    decoding_plugin = "pylibjpeg"  # about 1.5x faster than pillow on JPEG baseline
  palette = None
  out = []
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      for arr, meta in decoder.iter_array(
          ds, indices=list(indices), raw=True, decoding_plugin=decoding_plugin
      ):
        photometric = str(meta.get("photometric_interpretation", ds.PhotometricInterpretation))
        if photometric == "PALETTE COLOR" and palette is None:
          palette = luma.palette_luma_table(ds)
        out.append(luma.to_luma(arr, photometric, ds, palette))
  except ValueError as e:
    if "less than expected" in str(e):
      raise TruncatedFileError(
          path, "the pixel data is shorter than the image size says " "(truncated file)"
      ) from None
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
      box = tuple(
          int(item[k].value)
          for k in (
              "RegionLocationMinX0",
              "RegionLocationMinY0",
              "RegionLocationMaxX1",
              "RegionLocationMaxY1",
          )
      )
      regions.append(
          (
              int(item.get("RegionSpatialFormat", 0) or 0),
              int(item.get("RegionDataType", 0) or 0),
              box,
          )
      )
    except (KeyError, TypeError, ValueError, AttributeError):
      continue
  two_d = [r for r in regions if r[0] == 1]
  tissue = [box for _, kind, box in two_d if kind == 1]
  return tissue or [box for _, _, box in two_d]


_LOSSY_SYNTAXES = frozenset(
    (
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",  # JPEG baseline, extended
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.91",  # JPEG-LS near-lossless, JPEG 2000
        "1.2.840.10008.1.2.4.203",  # HTJ2K
    )
)


def is_lossy(ds: Any) -> bool:
  """True when the pixels went through lossy compression (per transfer syntax or the
  LossyImageCompression tag)."""
  tsyntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
  return tsyntax in _LOSSY_SYNTAXES or str(ds.get("LossyImageCompression", "")).strip() == "01"


def read_echo(
    path: str,
    num_frames: int = 20,
    interval_ms: float = 100,
    size: int = 299,
    *,
    default_fps: float = DEFAULT_FPS,
    allow_non_ultrasound: bool = False,
    decoding_plugin: str = "",
) -> EchoClip:
  """Reads one echo DICOM into a masked, sampled, square clip (see module docstring).

  Raises an :class:`EchoReadError` subclass naming the file and the reason.
  """
  path = str(path)
  with dicom_header.quiet_pydicom():
    return _read_echo(
        path, num_frames, interval_ms, size, default_fps, allow_non_ultrasound, decoding_plugin
    )


def _read_echo(
    path, num_frames, interval_ms, size, default_fps, allow_non_ultrasound, decoding_plugin
) -> EchoClip:
  ds = dicom_header.read_dataset(path, allow_non_ultrasound=allow_non_ultrasound)
  n_source = dicom_header.num_frames_of(ds)
  timing = frame_timing(ds, n_source, default_fps)
  indices = sample_timing(timing, n_source, num_frames, interval_ms)
  unique, inverse = np.unique(indices, return_inverse=True)
  decoded = decode_frames(ds, unique.tolist(), path, decoding_plugin)
  region = sector.region_box_mask(ultrasound_regions(ds), decoded.shape[1:])
  margin = sector.LOSSY_NOISE_MARGIN if is_lossy(ds) else 0
  found = sector.find_sector(decoded, region, noise_margin=margin)
  mask = found.mask
  geometry = sector.geometry_from_mask(mask, quality=found.quality, shape=found.shape)
  return make_clip(
      sector.mask_outside(decoded, mask),
      inverse,
      indices,
      timing,
      mask,
      geometry,
      size,
      source=path,
      num_source_frames=n_source,
  )
