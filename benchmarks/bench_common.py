"""What the train-step benchmarks (train_throughput.py, sweep_throughput.py) share.

Their network flags, the weight-task config those flags shape, one random batch, and the fields of
their JSON line that name the device and the machine. Imported as ``bench_common``: Python puts a
script's own folder (benchmarks/) on sys.path. Not a benchmark itself.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from typing import Any

import jax
import ml_collections
import numpy as np

from configs import default


def add_network_flags(
    p: argparse.ArgumentParser,
    *,
    batch: int,
    size: int,
    channels: int,
    width: float,
    blocks: str | None,
    steps: int,
    warmup: int,
    blocks_help: str | None = None,
) -> None:
  """--batch --size --channels --width --blocks --dtype --steps --warmup, with these defaults."""
  p.add_argument("--batch", type=int, default=batch)
  p.add_argument("--size", type=int, default=size)
  p.add_argument("--channels", type=int, default=channels)
  p.add_argument("--width", type=float, default=width)
  p.add_argument("--blocks", type=str, default=blocks, help=blocks_help)
  p.add_argument("--dtype", choices=["bf16", "fp32"], default="fp32")
  p.add_argument("--steps", type=int, default=steps)
  p.add_argument("--warmup", type=int, default=warmup)


def network_config(args: argparse.Namespace) -> ml_collections.ConfigDict:
  """The full weight-task config with the flags' width, dtype and (when given) blocks."""
  config = default.get_config(task="weight")
  config.model.update(width=args.width, dtype="bfloat16" if args.dtype == "bf16" else "float32")
  if args.blocks:
    config.model.blocks = tuple(int(b) for b in args.blocks.split(","))
  return config


def random_batch(batch: int, shape: tuple[int, ...]) -> dict[str, Any]:
  """``batch`` normal images of ``shape`` and weight labels (kg), from a fixed seed, on the host."""
  rng = np.random.default_rng(0)
  return {
      "image": rng.normal(size=(batch, *shape)).astype(np.float32),
      "labels": {"weight": rng.normal(80, 15, batch).astype(np.float32)},
  }


def device_fields(args: argparse.Namespace) -> dict[str, Any]:
  """The JSON line's device, jax version and input shape fields, in the benchmarks' order."""
  device = jax.devices()[0]
  return {
      "device": device.device_kind,
      "num_devices": jax.device_count(),
      "platform": device.platform,
      "jax_version": jax.__version__,
      "batch": args.batch,
      "size": args.size,
      "channels": args.channels,
  }


def machine_fields() -> dict[str, str]:
  """The JSON line's last fields: the machine and today's date."""
  return {
      "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
      "date": datetime.date.today().isoformat(),
  }
