"""echonet-jax entry point: ``python launch.py --config=configs/weight.py --workdir=DIR``.

Modes: ``train`` (default; resumes from DIR's latest checkpoint), ``evaluate`` (best checkpoint on
``--split``), ``predict`` (new DICOM files → CSV), ``saliency`` (maps and scores), ``preprocess``
(build the cache only), ``sweep`` (the lr × weight-decay grid; docs/sweep.md) and ``sweep_summary``.
``predict`` and ``saliency`` exit with code 3 when some inputs failed (each
has its error row; the others are written). Multi-host runs start with ``--coordinator_address`` (or SLURM / TPU
auto-detection) and every process runs the same command.
"""

from __future__ import annotations

import errno
import logging as std_logging
import os
import re
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

# Light: no JAX. Everything that imports JAX waits until multi-host start-up (see _run).
from echonet_jax import errors
from echonet_jax.errors import ConfigError

config_flags.DEFINE_config_file(
    "config",
    None,
    "Config file, e.g. configs/weight.py:cpu. Required to train and preprocess; "
    "evaluate, predict and saliency use the workdir's saved config when it is left out.",
    lock_config=True,
)
flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and outputs.")
flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "evaluate", "predict", "saliency", "preprocess", "sweep", "sweep_summary"],
    "What to run.",
)
flags.DEFINE_string("split", None, "evaluate/saliency: the split (default: config.eval.split).")
flags.DEFINE_list("input", [], "predict/saliency: DICOM files or folders.")
flags.DEFINE_list("models", [], "predict: workdirs of trained task models (default: --workdir).")
flags.DEFINE_string("output", None, "predict: the CSV to write (default: WORKDIR/predictions.csv).")
flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")
flags.DEFINE_string(
    "compilation_cache",
    None,
    "Folder for JAX's persistent compilation cache, so reruns and resumes skip compiling "
    "(default: $JAX_COMPILATION_CACHE_DIR, else $ECHONET_JAX_CACHE/xla; 'off' disables).",
)

FLAGS = flags.FLAGS


def _run(argv):
  if len(argv) > 1:
    raise ConfigError(f"unexpected arguments: {' '.join(argv[1:])}")
  mode = FLAGS.mode
  if mode not in ("preprocess", "predict") and not FLAGS.workdir:
    raise ConfigError(f"--workdir is required for --mode={mode}")
  given = _given_config()
  if given is None and mode in ("train", "preprocess", "sweep"):
    raise ConfigError(
        f"--config is required for --mode={mode}, e.g. --config=configs/weight.py:cpu"
    )
  # Imports after flag parsing: JAX must not start before multi-host initialisation.
  from echonet_jax import parallel  # pylint: disable=g-import-not-at-top

  parallel.maybe_initialize_distributed(
      FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
  )
  logging.info("%s", parallel.describe_devices())
  cache = FLAGS.compilation_cache
  if cache is None:
    cache = parallel.default_compilation_cache()
  parallel.use_compilation_cache(None if cache == "off" else cache)
  if given is not None:
    parallel.check_platform(given.get("platform"))  # no silent fall-back to the CPU
  from echonet_jax import modes  # pylint: disable=g-import-not-at-top

  if mode == "train":
    modes.train(given, FLAGS.workdir)
  elif mode == "evaluate":
    config = modes.matching_config(given, FLAGS.workdir)
    modes.evaluate(given, FLAGS.workdir, FLAGS.split or config.eval.split)
  elif mode == "predict":
    models = FLAGS.models or ([FLAGS.workdir] if FLAGS.workdir else [])
    for workdir in models if given is not None else ():
      modes.matching_config(given, workdir)
    result = modes.predict(given, models, FLAGS.input, FLAGS.output)
    _exit_if_inputs_failed(result.num_failed, result.num_ok + result.num_failed, result.path)
  elif mode == "saliency":
    config = modes.matching_config(given, FLAGS.workdir)
    # With --input and no --split, explain only the given files.
    split = (
        FLAGS.split if FLAGS.split is not None else ("" if FLAGS.input else config.saliency.split)
    )
    scores = modes.saliency(given, FLAGS.workdir, split, FLAGS.input)
    failed = len(scores["errors"])
    _exit_if_inputs_failed(
        failed,
        failed + len({(v["source"], v["video_id"]) for v in scores["videos"]}),
        os.path.join(FLAGS.workdir, "saliency", "scores.json"),
    )
  elif mode == "preprocess":
    modes.preprocess(given)
  elif mode == "sweep":
    modes.sweep(given, FLAGS.workdir)
  elif mode == "sweep_summary":
    modes.sweep_summary(FLAGS.workdir)


def _given_config():
  """``--config`` as a ConfigDict, or None when it was not given; a file that cannot be loaded
  is a one-line ConfigError."""
  if FLAGS["config"].value is None:
    return None
  try:
    FLAGS.config.get("task")  # an unloadable file only raises when the config is first used
  except OSError as e:
    raise ConfigError(_config_load_error(e)) from None
  return FLAGS.config


def _config_load_error(error: BaseException) -> str:
  """ "cannot load --config=PATH: reason" from ml_collections' multi-line loading error."""
  lines = [l.strip() for l in str(error).splitlines() if l.strip()]
  reason = next((l for l in reversed(lines) if l.startswith("[Errno")), lines[-1] if lines else "")
  given = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config=")]
  return f"cannot load --config{'=' + given[-1] if given else ''}: {reason}"


INPUTS_FAILED_EXIT_CODE = 3


def _exit_if_inputs_failed(failed: int, total: int, where: str) -> None:
  """Exit code 3 and one line when some inputs of a batch failed (the others were written)."""
  if failed:
    print(
        f"error: {failed} of {total} inputs failed; their rows (type and reason) are in {where}",
        file=sys.stderr,
    )
    sys.exit(INPUTS_FAILED_EXIT_CODE)


def _parse_flags(argv):
  """absl's flag parsing, with every bad flag or config override reported as one line."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    _exit_with(_flag_error_line(str(e)))
  except (AttributeError, KeyError) as e:
    key, hint = _unknown_key(e)
    bad = [a for a in argv[1:] if a.startswith("--config.") and key in a.split("=", 1)[0]]
    _exit_with(
        f"unknown config key {key!r} in {' '.join(bad) or 'a --config override'}"
        + (f" ({hint})" if hint else "")
    )
  except OSError as e:  # an override of a --config file that could not be loaded
    _exit_with(_config_load_error(e))
  except (TypeError, ValueError) as e:
    _exit_with(f"bad config: {str(e).strip().splitlines()[-1]}")


def _exit_with(line: str):
  print(f"error: {line}", file=sys.stderr)
  sys.exit(2)


def _flag_error_line(text: str) -> str:
  """One line from absl's message, which embeds the config file's whole traceback when
  ``get_config`` raised (e.g. an unknown modifier): "flag --config=X: <the exception's message>"."""
  lines = [l for l in text.splitlines() if l.strip()]
  if "Traceback (most recent call last)" not in text or not lines:
    return " ".join(l.strip() for l in lines)
  head = lines[0].split(": Error whilst parsing config file", 1)[0]
  last = lines[-1]
  message = last.split(": ", 1)[1] if re.match(r"^[\w.]+(Error|Exception): ", last) else last
  return f"{head}: {message}"


def _unknown_key(error: BaseException) -> tuple[str, str]:
  """(key, hint) from ml_collections' KeyError/AttributeError, whose text is a repr of
  "'key'\nDid you mean "x" instead of "key"?" (sometimes repr'd twice)."""
  text = str(error.args[0]) if error.args else str(error)
  for _ in range(3):  # undo the nested reprs: \\' -> ', \\n -> newline
    text = text.replace("\\'", "'").replace("\\n", "\n").strip("\"'")
  lines = [l.strip().strip("'\"") for l in text.splitlines() if l.strip()]
  key = lines[0] if lines else "?"
  hint = lines[1] if len(lines) > 1 else ""
  hint = hint[0].lower() + hint[1:] if hint else ""
  return key, hint


class _QuietLibraries:
  """Keeps orbax, grain and etils to what a user needs: no INFO lines (they log every save and
  restore), and no tracebacks from their background threads. Those errors come back to the main
  thread, where they are reported as one line; here a warning keeps its first line only."""

  _NOISY = ("/orbax/", "/grain/", "/etils/")
  # Orbax's background writes that failed after the first failure (reported once, as one line).
  _ORPHANS = "exception was never retrieved"
  # Harmless: a checkpoint saved on a step without validation is simply not ranked; evaluate
  # opens the checkpoints read-only.
  _EXPECTED = (
      "Requested `tracked_metric`; did not provide metrics.",
      "CheckpointManagerOptions.read_only=True",
      "Given directory is read only",
  )

  def filter(self, record) -> bool:
    if record.name == "asyncio" and self._ORPHANS in str(record.msg):
      return False
    if not any(part in record.pathname for part in self._NOISY):
      return True
    if record.levelno <= std_logging.INFO or record.exc_info:
      return False
    if record.levelno >= std_logging.ERROR:  # re-raised to the main thread
      return False
    text = record.getMessage().splitlines()
    if text and text[0].startswith(self._EXPECTED):
      return False
    record.msg, record.args = (text[0][:300] if text else ""), ()
    return True


def _quiet_closed_event_loops() -> None:
  """After a failed asynchronous save (a full disk), TensorStore completes its other writes into
  Orbax's event loop, which is closed by then; each would print "RuntimeError: Event loop is
  closed" with a traceback (as an unraisable exception). The failure itself is reported once."""
  previous = sys.unraisablehook

  def hook(unraisable):
    value = unraisable.exc_value
    if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
      return
    previous(unraisable)

  sys.unraisablehook = hook


def main(argv):
  logging.get_absl_handler().addFilter(_QuietLibraries())
  _quiet_closed_event_loops()
  try:
    _run(argv)
  except errors.user_errors() as e:  # One clear line, no stack trace from deep inside JAX.
    _fail(str(e))
  except OSError as e:  # a full or read-only disk anywhere else: still one line naming the path
    if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT):
      raise
    _fail(f"cannot write {e.filename or ''}: {e.strerror}")


def _fail(line: str):
  """Prints the one error line and exits 1. Background writers still failing on the same fault
  (a full disk) must not bury it under their shutdown tracebacks, so stderr closes after it."""
  print(f"error: {line}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  sys.exit(1)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  app.run(main, flags_parser=_parse_flags)
