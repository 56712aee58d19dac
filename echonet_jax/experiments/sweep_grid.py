"""The members of a sweep: the lr × weight-decay grid of ``config.sweep``, one job's share of it,
and how they are grouped into programs (stacked with ``vmap``, or ``sequential``).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import ml_collections

from echonet_jax.errors import ConfigError
from echonet_jax.training import sweep as sweep_lib

STRATEGIES = ("auto", "vmap", "sequential")
# The faster strategy per platform, from benchmarks/sweep_throughput.py (see BENCHMARKS.md). On
# XLA:CPU the stacked step's grouped convolutions run slower than N separate steps. Platforms not
# measured yet take "vmap": one program, the input pipeline paid once, members on the mesh.
FASTER = {"cpu": "sequential"}


def grid(config: ml_collections.ConfigDict) -> list[sweep_lib.Member]:
  """Every (lr, weight decay) of ``config.sweep``, row-major: member = i_lr · len(wd) + i_wd."""
  lrs, wds = tuple(config.sweep.lr), tuple(config.sweep.weight_decay)
  if not lrs or not wds:
    raise ConfigError(
        f"the sweep grid is empty (sweep.lr={list(lrs)}, sweep.weight_decay="
        f"{list(wds)}); give at least one value of each"
    )
  for lr in lrs:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
      raise ConfigError(f"sweep.lr contains {lr!r}; learning rates must be positive numbers")
  for wd in wds:
    if not (isinstance(wd, (int, float)) and math.isfinite(wd) and wd >= 0):
      raise ConfigError(f"sweep.weight_decay contains {wd!r}; weight decays must be >= 0")
  for name, values in (("lr", lrs), ("weight_decay", wds)):
    if len(set(values)) != len(values):
      raise ConfigError(f"sweep.{name}={list(values)} repeats a value")
  return [
      sweep_lib.Member(i * len(wds) + j, float(lr), float(wd))
      for i, lr in enumerate(lrs)
      for j, wd in enumerate(wds)
  ]


def selected(
    config: ml_collections.ConfigDict, members: Sequence[sweep_lib.Member]
) -> list[sweep_lib.Member]:
  """The members this job trains: ``config.sweep.members`` (array jobs), or all of them."""
  wanted = tuple(config.sweep.members)
  if not wanted:
    return list(members)
  bad = [i for i in wanted if not (isinstance(i, int) and 0 <= i < len(members))]
  if bad:
    raise ConfigError(
        f"sweep.members={list(wanted)}: {bad} out of range; the grid has "
        f"{len(members)} members, 0..{len(members) - 1}"
    )
  return [members[i] for i in sorted(set(wanted))]


def resolve_strategy(config: ml_collections.ConfigDict, platform: str | None = None) -> str:
  """``config.sweep.strategy``, with ``auto`` resolved to the faster one on this platform."""
  strategy = config.sweep.strategy
  if strategy not in STRATEGIES:
    raise ConfigError(f"sweep.strategy={strategy!r}; use one of {STRATEGIES}")
  if strategy == "auto":
    return FASTER.get(platform or jax.default_backend(), "vmap")
  return strategy


def groups(
    members: Sequence[sweep_lib.Member], strategy: str, members_per_program: int
) -> list[list[sweep_lib.Member]]:
  """Members split into programs: one each (sequential), or up to ``members_per_program``."""
  if members_per_program < 0:
    raise ConfigError(f"sweep.members_per_program={members_per_program}; use 0 (all) or more")
  size = 1 if strategy == "sequential" else (members_per_program or len(members) or 1)
  return [list(members[i : i + size]) for i in range(0, len(members), size)]
