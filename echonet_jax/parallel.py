"""Devices, the ("data",) mesh, batch sharding and multi-host start-up.

Training is data parallel: the train state is replicated, every batch is split along its first axis
over all devices of all hosts. ``jax.jit`` with ``NamedSharding`` does the rest (this is what
``jax.pmap`` is built on now, and it extends to several hosts unchanged).
"""

from __future__ import annotations

import os
from typing import Any

from absl import logging
import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from echonet_jax.errors import ConfigError
from echonet_jax.errors import TrainingError

DATA_AXIS = "data"


def maybe_initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
  """Calls ``jax.distributed.initialize`` when this is a multi-host run; returns whether it did.

  A run is multi-host when a coordinator address is given (flags or ``JAX_COORDINATOR_ADDRESS``),
  or when SLURM (``SLURM_NTASKS`` > 1) or a multi-host TPU slice is detected, in which case JAX
  discovers the cluster itself.
  """
  coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
  if coordinator_address:
    _enable_cpu_collectives()
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1 or _is_multihost_tpu():
    jax.distributed.initialize()
    return True
  return False


def _enable_cpu_collectives() -> None:
  # Multi-process CPU runs (tests, CPU clusters) need a cross-process collectives library.
  try:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  except Exception:  # pylint: disable=broad-except
    logging.warning("could not enable gloo CPU collectives")


def _is_multihost_tpu() -> bool:
  # A TPU pod slice lists its hosts; JAX then finds the coordinator itself.
  return "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")


def describe_devices() -> str:
  """One line on what JAX found, e.g.
  "JAX 0.10.2 backend cpu: 1 device (cpu: 1; 1 local); process 0 of 1"."""
  devices = jax.devices()
  kinds: dict[str, int] = {}
  for d in devices:
    kinds[d.device_kind] = kinds.get(d.device_kind, 0) + 1
  kind_text = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
  return (
      f"JAX {jax.__version__} backend {jax.default_backend()}: {len(devices)} "
      f"device{'s' if len(devices) != 1 else ''} ({kind_text}; {jax.local_device_count()} "
      f"local); process {jax.process_index()} of {jax.process_count()}"
  )


def default_compilation_cache() -> str:
  """$JAX_COMPILATION_CACHE_DIR, else ``xla`` beside the data caches ($ECHONET_JAX_CACHE)."""
  root = os.environ.get("ECHONET_JAX_CACHE", "~/.cache/echonet_jax")
  return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
      os.path.expanduser(root), "xla"
  )


def use_compilation_cache(path: str | None) -> None:
  """Keeps compiled programs that took over a second in JAX's persistent cache at ``path``, so a
  resumed or repeated run (same shapes, devices and jax) skips recompiling them; None turns the
  cache off."""
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path) if path else None)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def check_platform(platform: str | None) -> None:
  """Raises TrainingError with one clear line when no device of the requested platform exists, so a
  GPU/TPU host with a CPU-only jax never trains on the CPU without a word."""
  if not platform:
    return
  try:
    devices = jax.devices(platform)
  except RuntimeError:
    devices = []
  if not devices:
    raise TrainingError(
        f"no {platform!r} devices found (JAX backend {jax.default_backend()}, available: "
        f"{sorted({d.platform for d in jax.devices()})}); install jax for your accelerator (see "
        "README, Accelerators) or set --config.platform='' to use any"
    )


def make_mesh(devices: list[Any] | None = None) -> Mesh:
  """A 1-D ("data",) mesh over every device of every process, with Auto axis semantics."""
  devices = devices if devices is not None else jax.devices()
  kwargs = {}
  axis_type = getattr(jax.sharding, "AxisType", None)
  if axis_type is not None:
    kwargs["axis_types"] = (axis_type.Auto,)
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices, **kwargs)


def replicated(mesh: Mesh) -> NamedSharding:
  """The same value on every device (train state, metrics)."""
  return NamedSharding(mesh, P())


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Splits the leading (batch) axis over the data axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def global_batch(local_batch: Any, mesh: Mesh) -> Any:
  """Builds global arrays from this process's share of the batch (its rows, in process order)."""
  sharding = data_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
  )


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
  """Raises ConfigError when the global batch does not split evenly over the mesh's devices."""
  n = mesh.devices.size
  if global_batch_size % n:
    raise ConfigError(f"train.batch_size={global_batch_size} is not divisible by the {n} devices")
