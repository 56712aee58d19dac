"""Times the jitted, sharded train step after compilation; prints one JSON line.

  python benchmarks/train_throughput.py --batch 256 --size 299 --channels 3 --steps 20 --dtype bf16

FLOPs per image come from XLA's cost analysis of a CPU lowering of the forward pass (GPU lowerings
under-report), so ``mfu`` on a GPU = images/s × 3 × forward FLOPs / the device's bf16 peak.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
import numpy as np

from configs import default  # pylint: disable=g-import-not-at-top
from echonet_jax.training import parallel
from echonet_jax.training import step as train

# Dense bf16 peak FLOP/s (no sparsity) by device kind substring.
_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "V100": 125e12,
              "TPU v4": 275e12, "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6": 918e12}


def forward_gflops_per_image(model, variables, size: int, channels: int) -> float:
  """Forward FLOPs of one image from XLA's cost analysis of a CPU lowering (batch 2 / 2)."""
  cpu = jax.devices("cpu")[0]
  x = jax.ShapeDtypeStruct((2, size, size, channels), jnp.float32)
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
  with jax.default_device(cpu):
    lowered = jax.jit(lambda v, x: model.apply(v, x, train=False)).trace(abstract, x).lower(
        lowering_platforms=("cpu",))
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"]) / 2 / 1e9


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--size", type=int, default=299)
  p.add_argument("--channels", type=int, default=3)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--dtype", choices=["bf16", "fp32"], default="fp32")
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--blocks", type=str, default="5,10,5")
  args = p.parse_args()

  config = default.get_config(task="weight")
  config.model.update(width=args.width, blocks=tuple(int(b) for b in args.blocks.split(",")),
                      dtype="bfloat16" if args.dtype == "bf16" else "float32")
  names = ("weight",)
  mesh = parallel.make_mesh()
  model = train.create_model(config, names)
  tx = train.make_optimizer(config.optim, 1000)
  shape = (args.size, args.size, args.channels)
  state = jax.jit(lambda r: train.init(model, tx, r, shape, {}, names),
                  out_shardings=parallel.replicated(mesh))(jax.random.PRNGKey(0))
  step, _ = train.make_steps(model, tx, config.loss, mesh)
  rng = np.random.default_rng(0)
  batch = parallel.global_batch({
      "image": rng.normal(size=(args.batch, *shape)).astype(np.float32),
      "labels": {"weight": rng.normal(80, 15, args.batch).astype(np.float32)}}, mesh)

  t_compile = time.perf_counter()
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
      model, {"params": state.params, "batch_stats": state.batch_stats}, args.size, args.channels)
  images_per_s = args.batch * args.steps / elapsed
  device = jax.devices()[0]
  result = {
      "benchmark": "train_throughput", "images_per_s": round(images_per_s, 2),
      "step_ms": round(1e3 * elapsed / args.steps, 2), "params": int(params),
      "fwd_gflops_per_image": round(gflops, 3), "device": device.device_kind,
      "num_devices": jax.device_count(), "platform": device.platform,
      "jax_version": jax.__version__, "batch": args.batch, "size": args.size,
      "channels": args.channels, "dtype": args.dtype, "width": args.width,
      "blocks": args.blocks, "steps": args.steps, "warmup_s": round(compile_s, 1),
      "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
      "date": datetime.date.today().isoformat(),
  }
  peak = next((v for k, v in _PEAK_BF16.items() if k in device.device_kind), None)
  if peak and device.platform != "cpu":
    result["mfu"] = round(images_per_s * 3 * gflops * 1e9 / (peak * jax.device_count()), 4)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
