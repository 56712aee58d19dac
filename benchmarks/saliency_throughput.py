"""SmoothGrad throughput: vectorised (vmap, optionally chunked) against a Python loop of one jitted gradient.

Both compute the same map (same noise draws) for one image through the network in inference mode, and the
script checks they agree. Prints one JSON line. A full-size run (the defaults) wants an accelerator; on a
small CPU try ``--size 128 --width 0.5 --samples 8 --repeats 2``.

  python benchmarks/saliency_throughput.py --size 299 --channels 1 --samples 50 --width 1.0 --chunk_size 0
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from echonet_jax.interpret import saliency


class StandIn(nn.Module):
  """A small CNN with the real model's interface, for checking the script itself quickly."""

  num_outputs: int = 1
  width: float = 1.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    for features in (32, 64, 128):
      x = nn.Conv(
          max(1, int(features * self.width)), (3, 3), strides=2, use_bias=False, dtype=self.dtype
      )(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, dtype=self.dtype)(x))
    return nn.Dense(self.num_outputs, dtype=jnp.float32)(jnp.mean(x, axis=(1, 2)))


def build_model(name: str, width: float, dtype: jnp.dtype) -> nn.Module:
  if name == "standin":
    return StandIn(num_outputs=1, width=width, dtype=dtype)
  from echonet_jax.models import InceptionResNetV1  # pylint: disable=g-import-not-at-top

  return InceptionResNetV1(num_outputs=1, width=width, dropout_rate=0.2, dtype=dtype)


def _timed(fn, repeats: int) -> tuple[float, float, jax.Array]:
  """(seconds of the first call, which compiles; mean seconds of ``repeats`` more calls; last result)."""
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  first = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(repeats):
    out = jax.block_until_ready(fn())
  return first, (time.perf_counter() - start) / repeats, out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=int, default=299)
  parser.add_argument("--channels", type=int, default=1)
  parser.add_argument("--samples", type=int, default=50)
  parser.add_argument("--width", type=float, default=1.0)
  parser.add_argument(
      "--chunk_size", type=int, default=0, help="samples per vmapped chunk; 0 = all at once"
  )
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument(
      "--model", choices=("inception_resnet_v1", "standin"), default="inception_resnet_v1"
  )
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  chunk_size = args.chunk_size or None
  noise_frac = 0.15

  model = build_model(args.model, args.width, jnp.dtype(args.dtype))
  key_init, key_image, key_noise = jax.random.split(jax.random.key(args.seed), 3)
  image = jax.random.uniform(key_image, (args.size, args.size, args.channels), jnp.float32)
  variables = jax.jit(lambda k: model.init(k, image[None], train=False))(key_init)

  # The variables are arguments, not closed-over constants, so they are not baked into the programs.
  @jax.jit
  def vectorised(variables, x, key):
    f = saliency.scalar_model_fn(model, variables)
    return saliency.smoothgrad(
        f, x, key, num_samples=args.samples, noise_frac=noise_frac, chunk_size=chunk_size
    )

  @jax.jit
  def one_gradient(variables, x, key, sigma):
    f = saliency.scalar_model_fn(model, variables)
    return jax.grad(f)(x + sigma * jax.random.normal(key, x.shape, x.dtype))

  def looped():
    # The same draws as smoothgrad: sample i uses split(key, n)[i].
    sigma = saliency.smoothgrad_sigma(image, noise_frac)
    total = jnp.zeros_like(image)
    for k in jax.random.split(key_noise, args.samples):
      total = total + one_gradient(variables, image, k, sigma)
    return total / args.samples

  compile_vmap, seconds_vmap, map_vmap = _timed(
      lambda: vectorised(variables, image, key_noise), args.repeats
  )
  compile_loop, seconds_loop, map_loop = _timed(looped, args.repeats)
  scale = float(jnp.max(jnp.abs(map_loop))) or 1.0
  print(
      json.dumps(
          dict(
              benchmark="saliency_throughput",
              maps_per_s_vmap=round(1.0 / seconds_vmap, 4),
              maps_per_s_loop=round(1.0 / seconds_loop, 4),
              speedup=round(seconds_loop / seconds_vmap, 3),
              seconds_per_map_vmap=round(seconds_vmap, 4),
              seconds_per_map_loop=round(seconds_loop, 4),
              first_call_s_vmap=round(compile_vmap, 2),
              first_call_s_loop=round(compile_loop, 2),
              max_rel_diff=float(np.float32(jnp.max(jnp.abs(map_vmap - map_loop)) / scale)),
              device=str(jax.devices()[0].device_kind),
              platform=jax.default_backend(),
              jax_version=jax.__version__,
              model=args.model,
              size=args.size,
              channels=args.channels,
              samples=args.samples,
              width=args.width,
              dtype=args.dtype,
              chunk_size=chunk_size,
              repeats=args.repeats,
              machine=f"{platform.platform()} {platform.processor() or platform.machine()}, "
              f"{datetime.date.today().isoformat()}",
          )
      )
  )


if __name__ == "__main__":
  main()
