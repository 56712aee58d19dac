"""Saliency maps as pure functions over any ``f(x) -> scalar``.

``x`` is one image of shape (H, W, C), or for the gradient methods one clip (T, H, W, C). Every function here is jit-able and can be mapped over a batch with
``jax.vmap`` by the caller. Methods: vanilla gradient, SmoothGrad (Smilkov et al. 2017), Integrated
Gradients (Sundararajan et al. 2017), occlusion, and a localisation score against a ground-truth mask.

The functions take ``f`` and never a model or a training state; ``scalar_model_fn`` builds ``f`` from a
flax module and its variables.

Samples (noise draws, path points, patch positions) are evaluated with ``jax.vmap``. ``chunk_size`` bounds
memory: the samples then run ``chunk_size`` at a time in a ``lax.scan`` over vmapped chunks, and a last
short chunk takes any remainder, so ``num_samples`` need not be a multiple of ``chunk_size``. On XLA:CPU
(jax 0.10) input gradients of convolutions ran 4-5x slower inside the scan's loop body than outside it,
so on CPU leave ``chunk_size`` unset unless memory demands it (benchmarks/saliency_throughput.py).
"""

from __future__ import annotations

from typing import Any
from typing import Callable

import jax
import jax.numpy as jnp

ScalarFn = Callable[[jax.Array], jax.Array]


def scalar_model_fn(
    model: Any, variables: Any, output_index: int = 0, head: str | None = None
) -> ScalarFn:
  """``f(x)`` = output ``output_index`` of ``model`` in inference mode on the single image ``x``.

  ``model`` is called as ``model.apply(variables, x[None], train=False)``; for a multi-task model, whose
  call returns ``{head: logits}``, name the ``head``. For a binary task ``f`` is the logit, the usual
  quantity to explain.
  """

  def f(x: jax.Array) -> jax.Array:
    out = model.apply(variables, x[None], train=False)
    if isinstance(out, dict):
      if head not in out:
        raise ValueError(f"model has heads {sorted(out)}; pass head= one of them, got {head!r}")
      out = out[head]
    elif head is not None:
      raise ValueError(f"head={head!r} given but the model has a single output")
    return out[0, output_index]

  return f


def _checked(f: ScalarFn) -> ScalarFn:
  """``f`` that fails with a clear message unless it returns a scalar."""

  def g(x):
    y = f(x)
    if jnp.shape(y) != ():
      raise ValueError(
          f"saliency needs f(x) -> scalar, got output shape {jnp.shape(y)}; select one output, e.g. "
          "lambda x: model.apply(variables, x[None], train=False)[0, 0] (see scalar_model_fn)"
      )
    return y

  return g


def _check_image(x: jax.Array, name: str = "x", clips: bool = True) -> None:
  if jnp.ndim(x) not in ((3, 4) if clips else (3,)):
    kinds = "one image (H, W, C) or one clip (T, H, W, C)" if clips else "one image (H, W, C)"
    raise ValueError(
        f"{name} must be {kinds}, got shape {jnp.shape(x)}; " "map over a batch with jax.vmap"
    )


def _check_count(value: int, name: str) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{name} must be a positive int, got {value!r}")
  return value


def _chunks(num: int, chunk_size: int | None) -> tuple[int, int, int]:
  """(chunk, number of full chunks, remainder) for ``num`` samples."""
  if chunk_size is None:
    return num, 1, 0
  chunk = min(_check_count(chunk_size, "chunk_size"), num)
  return chunk, num // chunk, num % chunk


def _vmapped_sum(fn: Callable, xs: Any, num: int, chunk_size: int | None) -> jax.Array:
  """Σ_i fn(xs[i]) over the leading axis of the pytree ``xs``, ``chunk_size`` samples at a time."""
  chunk, num_full, remainder = _chunks(num, chunk_size)
  batched = jax.vmap(fn)
  head = jax.tree.map(lambda a: a[: chunk * num_full], xs)
  if num_full == 1:
    total = batched(head).sum(0)
  else:
    head = jax.tree.map(lambda a: a.reshape((num_full, chunk) + a.shape[1:]), head)
    zero = jax.eval_shape(lambda c: batched(c).sum(0), jax.tree.map(lambda a: a[0], head))
    total, _ = jax.lax.scan(
        lambda acc, c: (acc + batched(c).sum(0), None), jnp.zeros(zero.shape, zero.dtype), head
    )
  if remainder:
    total = total + batched(jax.tree.map(lambda a: a[chunk * num_full :], xs)).sum(0)
  return total


def _vmapped_map(fn: Callable, xs: Any, num: int, chunk_size: int | None) -> jax.Array:
  """``[fn(xs[i]) for i]`` stacked, ``chunk_size`` samples at a time (``lax.map`` over vmapped chunks)."""
  chunk, num_full, remainder = _chunks(num, chunk_size)
  batched = jax.vmap(fn)
  head = jax.tree.map(lambda a: a[: chunk * num_full], xs)
  if num_full == 1:
    out = batched(head)
  else:
    head = jax.tree.map(lambda a: a.reshape((num_full, chunk) + a.shape[1:]), head)
    out = jax.lax.map(batched, head)
    out = out.reshape((num_full * chunk,) + out.shape[2:])
  if remainder:
    out = jnp.concatenate([out, batched(jax.tree.map(lambda a: a[chunk * num_full :], xs))])
  return out


def vanilla_gradient(f: ScalarFn, x: jax.Array) -> jax.Array:
  """∂f/∂x at ``x``, shape of ``x``."""
  _check_image(x)
  return jax.grad(_checked(f))(x)


def smoothgrad_sigma(x: jax.Array, noise_frac: float = 0.15) -> jax.Array:
  """SmoothGrad noise level σ = noise_frac·(max(x) − min(x))."""
  return noise_frac * (jnp.max(x) - jnp.min(x))


def smoothgrad_noise(
    key: jax.Array, x: jax.Array, num_samples: int, noise_frac: float = 0.15
) -> jax.Array:
  """The noise draws SmoothGrad adds, shape (num_samples, *x.shape).

  Draw i is σ·normal(split(key, num_samples)[i]); ``smoothgrad`` makes the same draws one at a time.
  """
  sigma = smoothgrad_sigma(x, noise_frac)
  keys = jax.random.split(key, num_samples)
  return jax.vmap(lambda k: sigma * jax.random.normal(k, x.shape, x.dtype))(keys)


def jitter_shifts(num_samples: int, jitter: int) -> jax.Array:
  """Whole-pixel (dy, dx) shifts for ``num_samples`` samples, stratified over the jitter × jitter grid.

  Sample i gets ``((i // jitter) % jitter, i % jitter)``, so every shift is used equally often when
  ``num_samples`` is a multiple of jitter² (and nearly so otherwise); int32 (num_samples, 2).
  """
  i = jnp.arange(num_samples)
  if jitter <= 1:
    return jnp.zeros((num_samples, 2), jnp.int32)
  return jnp.stack([(i // jitter) % jitter, i % jitter], axis=1).astype(jnp.int32)


def smoothgrad(
    f: ScalarFn,
    x: jax.Array,
    key: jax.Array,
    num_samples: int = 50,
    noise_frac: float = 0.15,
    magnitude: bool = False,
    chunk_size: int | None = None,
    jitter: int = 0,
) -> jax.Array:
  """SmoothGrad (Smilkov et al. 2017): mean gradient of ``f`` at ``x + N(0, σ²)``, shape of ``x``.

  σ = noise_frac·(max(x) − min(x)). With ``magnitude`` the squared gradients are averaged. Noise draw i
  uses key ``split(key, num_samples)[i]`` (see ``smoothgrad_noise``). ``chunk_size`` bounds how many
  gradients are in memory at once; any positive value works.

  ``jitter`` > 1 also translates noisy copy i by the whole-pixel shift ``jitter_shifts(...)[i]``
  (``jnp.roll``, which wraps around: harmless on the black border of a masked echo frame) and takes the
  gradient with respect to the unshifted image, i.e. the gradient of the translation-averaged model.
  Strided convolutions make input gradients periodic in the stride (a checkerboard); averaging over
  every shift within one period (``jitter`` a multiple of the period) cancels that pattern.
  """
  _check_image(x)
  _check_count(num_samples, "num_samples")
  f = _checked(f)
  sigma = smoothgrad_sigma(x, noise_frac)

  def one(key_shift):
    k, shift = key_shift
    g = jax.grad(lambda z: f(jnp.roll(z, (shift[0], shift[1]), axis=(0, 1))))(
        x + sigma * jax.random.normal(k, x.shape, x.dtype)
    )
    return g * g if magnitude else g

  keys = jax.random.split(key, num_samples)
  shifts = jitter_shifts(num_samples, jitter)
  return _vmapped_sum(one, (keys, shifts), num_samples, chunk_size) / num_samples


_IG_RULES = ("trapezoid", "midpoint")


def integrated_gradients(
    f: ScalarFn,
    x: jax.Array,
    baseline: jax.Array | float | None = None,
    steps: int = 25,
    chunk_size: int | None = None,
    rule: str = "trapezoid",
) -> jax.Array:
  """Integrated Gradients (Sundararajan et al. 2017) on the straight path from ``baseline`` to ``x``.

  ``baseline`` defaults to zeros. The path integral uses ``rule``: "trapezoid" (steps + 1 gradients,
  endpoints included) or "midpoint" (``steps`` gradients); both are second order, so the attributions sum
  to f(x) − f(baseline) up to O(1/steps²) (completeness).
  """
  _check_image(x)
  _check_count(steps, "steps")
  if rule not in _IG_RULES:
    raise ValueError(f"rule must be one of {_IG_RULES}, got {rule!r}")
  baseline = (
      jnp.zeros_like(x)
      if baseline is None
      else jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
  )
  if rule == "trapezoid":
    alphas = jnp.linspace(0.0, 1.0, steps + 1, dtype=x.dtype)
    weights = jnp.full((steps + 1,), 1.0 / steps, x.dtype).at[jnp.array([0, -1])].multiply(0.5)
  else:
    alphas = (jnp.arange(steps, dtype=x.dtype) + 0.5) / steps
    weights = jnp.full((steps,), 1.0 / steps, x.dtype)
  grad = jax.grad(_checked(f))
  delta = x - baseline

  def one(alpha_weight):
    alpha, weight = alpha_weight
    return weight * grad(baseline + alpha * delta)

  return delta * _vmapped_sum(one, (alphas, weights), alphas.shape[0], chunk_size)


def occlude(
    f: ScalarFn, x: jax.Array, mask: jax.Array, fill: jax.Array | float = 0.0
) -> tuple[jax.Array, jax.Array]:
  """(f(x), f(x with ``mask`` set to ``fill``)). ``mask`` is (H, W) or (H, W, C), true where occluded."""
  _check_image(x, clips=False)
  mask = jnp.asarray(mask)
  if mask.shape not in (x.shape[:2], x.shape):
    raise ValueError(f"mask shape {mask.shape} must be {x.shape[:2]} or {x.shape} to match x")
  if mask.ndim == 2:
    mask = mask[..., None]
  f = _checked(f)
  return f(x), f(jnp.where(mask.astype(bool), jnp.asarray(fill, x.dtype), x))


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
  """Patch start offsets along one axis: every ``stride``, plus a last one flush with the edge."""
  if patch > size:
    raise ValueError(f"patch {patch} is larger than the image side {size}")
  starts = list(range(0, size - patch + 1, stride))
  if starts[-1] != size - patch:
    starts.append(size - patch)
  return starts


def occlusion_map(
    f: ScalarFn,
    x: jax.Array,
    patch: int = 16,
    stride: int = 8,
    fill: jax.Array | float = 0.0,
    chunk_size: int | None = None,
) -> jax.Array:
  """Sliding-patch occlusion: (H, W) map of f(x) − f(x with the patch set to ``fill``).

  Each pixel gets the mean change over the patches that cover it; positive means hiding it lowers f. Patch
  positions cover the whole image (the last row/column of patches is flush with the edge). The occluded
  copies are evaluated with vmap, ``chunk_size`` at a time.
  """
  _check_image(x, clips=False)
  _check_count(patch, "patch")
  _check_count(stride, "stride")
  height, width = x.shape[:2]
  ys, xs = patch_starts(height, patch, stride), patch_starts(width, patch, stride)
  starts = jnp.array([(y, x0) for y in ys for x0 in xs], jnp.int32)
  rows, cols = jnp.arange(height), jnp.arange(width)
  f = _checked(f)
  fill = jnp.asarray(fill, x.dtype)

  def one(start):
    in_rows = (rows >= start[0]) & (rows < start[0] + patch)
    in_cols = (cols >= start[1]) & (cols < start[1] + patch)
    return f(jnp.where((in_rows[:, None] & in_cols[None, :])[..., None], fill, x))

  drop = f(x) - _vmapped_map(one, starts, starts.shape[0], chunk_size)
  # Patches are separable, so Σ_p drop_p·1[row in p]·1[col in p] is a matrix product.
  row_hit = ((rows[None] >= starts[:, :1]) & (rows[None] < starts[:, :1] + patch)).astype(x.dtype)
  col_hit = ((cols[None] >= starts[:, 1:]) & (cols[None] < starts[:, 1:] + patch)).astype(x.dtype)
  return (row_hit * drop[:, None]).T @ col_hit / (row_hit.T @ col_hit)


def localisation_score(saliency_map: jax.Array, region_mask: jax.Array) -> dict[str, jax.Array]:
  """How much of a saliency map falls inside a ground-truth region.

  ``saliency_map`` is (H, W) or (H, W, C) (|map| summed over channels); ``region_mask`` is (H, W), true
  inside the region. Returns scalars: ``mass_in_region`` (share of saliency inside), ``area_fraction``
  (share of pixels inside), ``ratio`` = mass_in_region / area_fraction (1 for a map blind to the region,
  > 1 when it concentrates there) and ``pointing_hit`` (1.0 if the map's maximum lies inside). An
  empty region or an all-zero map gives nan.
  """
  saliency_map, region_mask = jnp.asarray(saliency_map), jnp.asarray(region_mask)
  if saliency_map.ndim not in (2, 3) or region_mask.shape != saliency_map.shape[:2]:
    raise ValueError(
        f"saliency_map {saliency_map.shape} must be (H, W) or (H, W, C) and region_mask "
        f"{region_mask.shape} must be its (H, W)"
    )
  mass = jnp.abs(saliency_map)
  if mass.ndim == 3:
    mass = mass.sum(-1)
  mass = mass.astype(jnp.float32)
  inside = region_mask.astype(bool)
  total = mass.sum()
  mass_in_region = jnp.where(
      total > 0, jnp.sum(mass * inside) / jnp.where(total > 0, total, 1.0), jnp.nan
  )
  area_fraction = inside.mean(dtype=jnp.float32)
  ratio = jnp.where(
      area_fraction > 0, mass_in_region / jnp.where(area_fraction > 0, area_fraction, 1.0), jnp.nan
  )
  pointing_hit = inside.reshape(-1)[jnp.argmax(mass)].astype(jnp.float32)
  return dict(
      mass_in_region=mass_in_region,
      area_fraction=area_fraction,
      ratio=ratio,
      pointing_hit=pointing_hit,
  )
