"""Errors whose message is one clear line for the user (launch.py prints it without a traceback)."""


class EchonetError(Exception):
  """Base class of the errors launch.py reports as one line."""


class ConfigError(EchonetError, ValueError):
  """A config that cannot run: unknown task, loss, schedule, indivisible batch..."""


class TrainingError(EchonetError, RuntimeError):
  """A run that cannot go on: diverged loss, a workdir of another run, no devices."""


def user_errors() -> tuple[type[BaseException], ...]:
  """The exception types that launch.py reports as one line instead of a traceback."""
  errors: list[type[BaseException]] = [EchonetError, FileNotFoundError]
  try:
    from echonet_jax.dicom import EchoReadError  # pylint: disable=g-import-not-at-top
    errors.append(EchoReadError)
  except ImportError:
    pass
  return tuple(errors)
