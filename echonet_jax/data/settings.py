"""Plausibility rules for the data settings, shared by the config check and the preprocess CLI.

``check_settings({"num_frames": 0, ...}, label)`` raises :class:`ConfigError` with one line for the
first setting that cannot work; ``label`` turns a setting's name into what the user typed
(``data.num_frames`` in a config, ``--num_frames`` on the preprocess command line).
"""

from __future__ import annotations

import math
from typing import Any
from typing import Callable
from typing import Mapping

from echonet_jax.data.clip import MAX_FRAME_TIME_MS
from echonet_jax.data.clip import MIN_FRAME_TIME_MS
from echonet_jax.errors import ConfigError

_MIN_FPS, _MAX_FPS = 1000.0 / MAX_FRAME_TIME_MS, 1000.0 / MIN_FRAME_TIME_MS

# name -> (integer?, test, what a valid value is)
_RULES: dict[str, tuple[bool, Callable[[float], bool], str]] = {
    "num_frames": (True, lambda v: v >= 1, "must be >= 1"),
    "interval_ms": (False, lambda v: v > 0, "must be > 0"),
    "image_size": (True, lambda v: v >= 0, "must be >= 0 (0: the source's native size)"),
    "default_fps": (
        False,
        lambda v: _MIN_FPS <= v <= _MAX_FPS,
        f"must be in [{_MIN_FPS:g}, {_MAX_FPS:g}] frames/s (a frame time of "
        f"{MIN_FRAME_TIME_MS:g}-{MAX_FRAME_TIME_MS:g} ms)",
    ),
    "test_frac": (False, lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "val_frac": (False, lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "workers": (True, lambda v: v >= 0, "must be >= 0"),
    "preprocess_workers": (True, lambda v: v >= 0, "must be >= 0"),
    "num_shards": (True, lambda v: v >= 1, "must be >= 1"),
    "shard_index": (True, lambda v: v >= 0, "must be >= 0"),
    "videos_per_shard": (True, lambda v: v >= 1, "must be >= 1"),
}


def check_number(name: str, value: Any, integer: bool) -> float:
  """``value`` as a finite number; ConfigError naming ``name`` otherwise."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ConfigError(f"{name}={value!r}; must be a number")
  if not math.isfinite(value):
    raise ConfigError(f"{name}={value!r}; must be finite")
  if integer and value != int(value):
    raise ConfigError(f"{name}={value!r}; must be a whole number")
  return value


def check_settings(settings: Mapping[str, Any], label: Callable[[str], str] = str) -> None:
  """Raises ConfigError (one line) for the first implausible data setting in ``settings``.

  Known names: see ``_RULES``; ``None`` values (CLI defaults left to the library) are skipped.
  Cross check: ``shard_index < num_shards``. The split fractions need no sum rule: ``val_frac`` is a
  fraction of what ``test_frac`` leaves, so training keeps ``(1 - test_frac) * (1 - val_frac) > 0``.
  """
  for name, value in settings.items():
    if name not in _RULES or value is None:
      continue
    integer, test, valid = _RULES[name]
    if not test(check_number(label(name), value, integer)):
      raise ConfigError(f"{label(name)}={value!r}; {valid}")
  index, shards = settings.get("shard_index"), settings.get("num_shards")
  if index is not None and shards is not None and index >= shards:
    raise ConfigError(f"{label('shard_index')}={index}; must be < {label('num_shards')}={shards}")


_CLI_KEYS = (
    "num_frames",
    "interval_ms",
    "default_fps",
    "test_frac",
    "val_frac",
    "workers",
    "num_shards",
    "shard_index",
    "videos_per_shard",
)


def check_preprocess_args(args: Any) -> None:
  """Checks the preprocess CLI's parsed flags; ConfigError names the flag (``--num_frames=0; ...``).

  ``--image_size 0`` stays 0: the CacheSpec resolves it to the source's native size.
  """
  check_settings({k: getattr(args, k) for k in _CLI_KEYS}, label=lambda k: f"--{k}")
  check_settings({"image_size": args.image_size}, label=lambda k: "--image_size")
