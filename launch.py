"""echonet-jax entry point: ``python launch.py --config=configs/weight.py --workdir=DIR``.

Modes: ``train`` (default; resumes from DIR's latest checkpoint), ``evaluate`` (best checkpoint on
``--split``), ``predict`` (new DICOM files → CSV), ``saliency`` (maps and scores), ``preprocess``
(build the cache only), ``sweep`` (the lr × weight-decay grid; docs/sweep.md) and ``sweep_summary``.
``predict`` and ``saliency`` exit with code 3 when some inputs failed (each
has its error row; the others are written). Multi-host runs start with ``--coordinator_address`` (or SLURM / TPU
auto-detection) and every process runs the same command.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/weight.py:cpu.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and outputs.")
flags.DEFINE_enum("mode", "train", ["train", "evaluate", "predict", "saliency", "preprocess",
                                   "sweep", "sweep_summary"],
                  "What to run.")
flags.DEFINE_string("split", None, "evaluate/saliency: the split (default: config.eval.split).")
flags.DEFINE_list("input", [], "predict/saliency: DICOM files or folders.")
flags.DEFINE_list("models", [], "predict: workdirs of trained task models (default: --workdir).")
flags.DEFINE_string("output", None, "predict: the CSV to write (default: WORKDIR/predictions.csv).")
flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")
flags.mark_flags_as_required(["config"])

FLAGS = flags.FLAGS


def _run(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # Imports after flag parsing: JAX must not start before multi-host initialisation.
  from echonet_jax.training import parallel  # pylint: disable=g-import-not-at-top
  parallel.maybe_initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                        FLAGS.process_id)
  from echonet_jax import modes  # pylint: disable=g-import-not-at-top

  config = FLAGS.config
  mode = FLAGS.mode
  if mode != "preprocess" and mode != "predict" and not FLAGS.workdir:
    raise app.UsageError(f"--workdir is required for --mode={mode}")
  if mode == "train":
    modes.train(config, FLAGS.workdir)
  elif mode == "evaluate":
    modes.evaluate(config, FLAGS.workdir, FLAGS.split or config.eval.split)
  elif mode == "predict":
    models = FLAGS.models or ([FLAGS.workdir] if FLAGS.workdir else [])
    result = modes.predict(config, models, FLAGS.input, FLAGS.output)
    _exit_if_inputs_failed(result.num_failed, result.num_ok + result.num_failed, result.path)
  elif mode == "saliency":
    # With --input and no --split, explain only the given files.
    split = FLAGS.split if FLAGS.split is not None else ("" if FLAGS.input else
                                                        config.saliency.split)
    scores = modes.saliency(config, FLAGS.workdir, split, FLAGS.input)
    failed = len(scores["errors"])
    _exit_if_inputs_failed(failed, failed + len({(v["source"], v["video_id"])
                                                 for v in scores["videos"]}),
                           os.path.join(FLAGS.workdir, "saliency", "scores.json"))
  elif mode == "preprocess":
    modes.preprocess(config)
  elif mode == "sweep":
    modes.sweep(config, FLAGS.workdir)
  elif mode == "sweep_summary":
    modes.sweep_summary(FLAGS.workdir)


INPUTS_FAILED_EXIT_CODE = 3


def _exit_if_inputs_failed(failed: int, total: int, where: str) -> None:
  """Exit code 3 and one line when some inputs of a batch failed (the others were written)."""
  if failed:
    print(f"error: {failed} of {total} inputs failed; their rows (type and reason) are in {where}",
          file=sys.stderr)
    sys.exit(INPUTS_FAILED_EXIT_CODE)


def _parse_flags(argv):
  """absl's flag parsing, with a bad config override reported as one line instead of a traceback."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    print(f"error: {e}\nPass --helpshort or --helpfull to see help on flags.", file=sys.stderr)
    sys.exit(2)
  except (AttributeError, KeyError) as e:
    key = str(e).strip("\"'")
    bad = [a for a in argv[1:] if a.startswith("--config.") and key in a]
    print(f"error: unknown config key {key!r} in {' '.join(bad) or 'a --config override'}",
          file=sys.stderr)
    sys.exit(2)
  except (TypeError, ValueError) as e:
    print(f"error: bad config: {e}", file=sys.stderr)
    sys.exit(2)


class _QuietLibraries:
  """Drops INFO lines from orbax and grain (they log every save and restore at INFO)."""

  def filter(self, record) -> bool:
    noisy = ("/orbax/", "/grain/", "/etils/")
    return record.levelno > 20 or not any(part in record.pathname for part in noisy)


def main(argv):
  from echonet_jax import errors  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().addFilter(_QuietLibraries())
  try:
    _run(argv)
  except errors.user_errors() as e:  # One clear line, no stack trace from deep inside JAX.
    logging.error("%s: %s", type(e).__name__, e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  app.run(main, flags_parser=_parse_flags)
