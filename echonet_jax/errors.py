"""Errors whose message is one clear line for the user (launch.py prints it without a traceback)."""


class EchonetError(Exception):
  """Base class of the errors launch.py reports as one line."""


class ConfigError(EchonetError, ValueError):
  """A config that cannot run: unknown task, loss, schedule, indivisible batch..."""


class TrainingError(EchonetError, RuntimeError):
  """A run that cannot go on: diverged loss, a workdir of another run, no devices."""


class CacheError(EchonetError, RuntimeError):
  """A cache that cannot be built or read: a damaged shard, a worker process that died, a folder
  holding a cache of other settings. The message names the file or shard."""


class EchoReadError(Exception):
  """A file that could not be turned into a clip; ``str(err)`` is ``"PATH: reason"``."""

  def __init__(self, path: str, reason: str):
    super().__init__(f"{path}: {reason}")
    self.path = str(path)
    self.reason = reason

  def __reduce__(self):  # picklable across worker processes
    return (type(self), (self.path, self.reason))


class FileMissingError(EchoReadError):
  """The path does not exist."""


class NotDicomError(EchoReadError):
  """The file is not DICOM."""


class TruncatedFileError(EchoReadError):
  """The file ends before its pixel data does."""


class NoPixelDataError(EchoReadError):
  """The dataset holds no image."""


class NotUltrasoundError(EchoReadError):
  """The modality is not US (override with ``allow_non_ultrasound``)."""


class NoFramesError(EchoReadError):
  """The dataset says it has zero frames."""


class MissingDecoderError(EchoReadError):
  """No installed plugin can decode the transfer syntax."""


class UnsupportedImageError(EchoReadError):
  """The pixel layout (photometric interpretation, bit depth) is not one we can turn into luma."""


class DecodeError(EchoReadError):
  """A decoder failed on the pixel data."""


class VideoReadError(EchoReadError):
  """A video file (e.g. EchoNet-Dynamic AVI) could not be read."""


class MaskError(EchoReadError):
  """A ground-truth mask file is missing or does not match its video."""


def user_errors() -> tuple[type[BaseException], ...]:
  """The exception types that launch.py reports as one line instead of a traceback."""
  return (EchonetError, EchoReadError, FileNotFoundError)
