"""Times the jitted, sharded train step after compilation; prints one JSON line.

  python benchmarks/train_throughput.py --batch 256 --size 299 --channels 3 --steps 20 --dtype bf16
  python benchmarks/train_throughput.py --model r2plus1d_18 --frames 32 --size 112 --batch 2

FLOPs per image (per clip for a video model) come from XLA's cost analysis of a CPU lowering of the
forward pass (GPU lowerings under-report), so ``mfu`` on a GPU = images/s × 3 × forward FLOPs / the
device's bf16 peak (clips/s for a video model). ``temp_mib`` is XLA's scratch memory of the compiled
train step (activations kept for the backward pass and the like), when the backend reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_common  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp

from echonet_jax import models  # pylint: disable=g-import-not-at-top
from echonet_jax import parallel
from echonet_jax.training import step as train

# Dense bf16 peak FLOP/s (no sparsity) by device kind substring.
_PEAK_BF16 = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "V100": 125e12,
    "TPU v4": 275e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v6": 918e12,
}


def forward_gflops_per_image(model, variables, shape: tuple[int, ...]) -> float:
  """Forward FLOPs of one input of ``shape`` from XLA's cost analysis of a CPU lowering (2 / 2)."""
  cpu = jax.devices("cpu")[0]
  x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
  with jax.default_device(cpu):
    lowered = (
        jax.jit(lambda v, x: model.apply(v, x, train=False))
        .trace(abstract, x)
        .lower(lowering_platforms=("cpu",))
    )
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"]) / 2 / 1e9


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  bench_common.add_network_flags(
      p,
      batch=8,
      size=299,
      channels=3,
      width=1.0,
      blocks=None,
      steps=5,
      warmup=2,
      blocks_help="per stage; default: the model's (5,10,5 / 2,2,2,2)",
  )
  p.add_argument("--model", choices=sorted(models.MODELS), default="inception_resnet_v1")
  p.add_argument("--frames", type=int, default=32, help="clip length T of a video model")
  args = p.parse_args()

  video = args.model != "inception_resnet_v1"
  config = bench_common.network_config(args)
  names = ("weight",)
  mesh = parallel.make_mesh()
  if video:
    model = models.get_model(
        args.model,
        num_outputs={name: 1 for name in names},
        width=args.width,
        dtype=jnp.dtype(config.model.dtype),
        **({"blocks": config.model.blocks} if args.blocks else {}),
    )
  else:
    model = train.create_model(config, names)
  tx = train.make_optimizer(config.optim, 1000)
  shape = ((args.frames,) if video else ()) + (args.size, args.size, args.channels)
  state = jax.jit(
      lambda r: train.init(model, tx, r, shape, {}, names), out_shardings=parallel.replicated(mesh)
  )(jax.random.PRNGKey(0))
  step, _ = train.make_steps(model, tx, config.loss, mesh)
  batch = parallel.global_batch(bench_common.random_batch(args.batch, shape), mesh)

  t_compile = time.perf_counter()
  step = step.lower(state, batch).compile()
  try:
    memory = step.memory_analysis()
  except (NotImplementedError, RuntimeError):  # not every backend reports it
    memory = None
  for _ in range(args.warmup):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - t_compile
  t0 = time.perf_counter()
  for _ in range(args.steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  elapsed = time.perf_counter() - t0

  params = sum(x.size for x in jax.tree.leaves(state.params))
  gflops = forward_gflops_per_image(
      model, {"params": state.params, "batch_stats": state.batch_stats}, shape
  )
  examples_per_s = args.batch * args.steps / elapsed
  # A video model's "images" are its frames; MFU counts clips.
  images_per_s = examples_per_s * (args.frames if video else 1)
  device = jax.devices()[0]
  result = {
      "benchmark": "train_throughput",
      "model": args.model,
      "images_per_s": round(images_per_s, 2),
      "step_ms": round(1e3 * elapsed / args.steps, 2),
      "params": int(params),
      f"fwd_gflops_per_{'clip' if video else 'image'}": round(gflops, 3),
      **bench_common.device_fields(args),
      "dtype": args.dtype,
      "width": args.width,
      "blocks": ",".join(str(b) for b in model.blocks),
      "steps": args.steps,
      "warmup_s": round(compile_s, 1),
      **bench_common.machine_fields(),
  }
  if video:
    result.update(clips_per_s=round(examples_per_s, 3), frames=args.frames)
  if memory is not None and getattr(memory, "temp_size_in_bytes", None) is not None:
    result["temp_mib"] = round(memory.temp_size_in_bytes / 2**20, 1)
  peak = next((v for k, v in _PEAK_BF16.items() if k in device.device_kind), None)
  if peak and device.platform != "cpu":
    result["mfu"] = round(examples_per_s * 3 * gflops * 1e9 / (peak * jax.device_count()), 4)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
