"""Member-images/s of N sweep members stacked (one vmapped program) vs N sequential steps; one JSON line.

  python benchmarks/sweep_throughput.py --members 4 --batch 32 --size 96 --width 0.25 --blocks 1,2,1
  python benchmarks/sweep_throughput.py --members 8 --batch 128 --size 299 --dtype bf16   # a GPU

Both forms train the same N members (each its own lr and weight decay) on the same batch, after
compilation, in the same process: ``stacked`` is ``jax.vmap(train_step)`` over states stacked on a
member axis (sharded over the devices' "member" axis when several divide N); ``sequential`` calls
the ordinary jitted step once per member. A member-image is one image seen by one member.
``faster`` is what ``sweep.strategy=auto`` should pick on this platform (see FASTER in
echonet_jax/experiments/sweep_grid.py).
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

from configs import default  # pylint: disable=g-import-not-at-top
from echonet_jax import parallel
from echonet_jax.training import step as step_lib
from echonet_jax.training import sweep as sweep_lib


def _time(fn, state, batch, steps: int, warmup: int):
  for _ in range(warmup):
    state, metrics = fn(state, batch)
  jax.block_until_ready((state, metrics))
  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = fn(state, batch)
  jax.block_until_ready((state, metrics))
  return time.perf_counter() - t0


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--members", type=int, default=4)
  bench_common.add_network_flags(
      p, batch=32, size=96, channels=1, width=0.25, blocks="1,2,1", steps=3, warmup=1
  )
  args = p.parse_args()

  config = bench_common.network_config(args)
  names = ("weight",)
  model = step_lib.create_model(config, names)
  tx = step_lib.make_optimizer(config.optim, 1000)
  loss_fn = step_lib.make_loss(config.loss, step_lib.task_kinds(names))
  shape = (args.size, args.size, args.channels)
  fresh = jax.jit(lambda r: step_lib.init(model, tx, r, shape, {}, names))(jax.random.PRNGKey(0))
  grid = [(lr, wd) for lr in default.SWEEP_LR for wd in default.SWEEP_WEIGHT_DECAY]
  states = [step_lib.with_hyperparams(fresh, *grid[k % len(grid)]) for k in range(args.members)]
  host_batch = bench_common.random_batch(args.batch, shape)

  mesh = sweep_lib.member_mesh(args.members)
  stacked_fn, _, members = sweep_lib.make_stacked_steps(model, tx, loss_fn, mesh, args.members)
  stacked = jax.device_put(sweep_lib.stack(states), members)
  t_stacked = _time(
      stacked_fn, stacked, parallel.global_batch(host_batch, mesh), args.steps, args.warmup
  )
  del stacked

  flat_mesh = parallel.make_mesh()
  one_fn, _ = step_lib.make_steps(model, tx, loss_fn, flat_mesh)
  rep = parallel.replicated(flat_mesh)
  seq = [jax.device_put(jax.tree.map(jnp.copy, s), rep) for s in states]
  batch = parallel.global_batch(host_batch, flat_mesh)

  def all_members(group, b):
    out = [one_fn(s, b) for s in group]
    return [s for s, _ in out], [m for _, m in out]

  t_seq = _time(all_members, seq, batch, args.steps, args.warmup)

  work = args.members * args.batch * args.steps
  stacked_rate, seq_rate = work / t_stacked, work / t_seq
  print(
      json.dumps(
          {
              "benchmark": "sweep_throughput",
              "members": args.members,
              "stacked_member_images_per_s": round(stacked_rate, 2),
              "sequential_member_images_per_s": round(seq_rate, 2),
              "stacked_over_sequential": round(stacked_rate / seq_rate, 3),
              "faster": "vmap" if stacked_rate > seq_rate else "sequential",
              "member_mesh": dict(mesh.shape),
              **bench_common.device_fields(args),
              "width": args.width,
              "blocks": args.blocks,
              "dtype": args.dtype,
              "steps": args.steps,
              **bench_common.machine_fields(),
          }
      )
  )


if __name__ == "__main__":
  main()
