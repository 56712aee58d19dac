"""Tests for echonet_jax.interpret.saliency: closed forms, vectorisation, chunking, completeness, occlusion, scores."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from echonet_jax.interpret import saliency

SHAPE = (6, 5, 2)


def _weights():
  return jnp.linspace(-1.5, 2.0, np.prod(SHAPE)).reshape(SHAPE)


def _quadratic(w):
  return lambda x: jnp.sum(w * x**2)


def _image(seed=0, shape=SHAPE):
  return jax.random.normal(jax.random.key(seed), shape)


class TinyCNN(nn.Module):
  """A small nonlinear model with the project's model interface."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.gelu(nn.Conv(4, (3, 3))(x))
    x = nn.BatchNorm(use_running_average=not train)(x)
    x = nn.tanh(nn.Conv(4, (3, 3), strides=2)(x))
    return nn.Dense(2)(jnp.mean(x, axis=(1, 2)))


def _tiny_cnn_fn(shape=(12, 12, 1), output_index=0):
  model = TinyCNN()
  variables = model.init(jax.random.key(3), jnp.zeros((1,) + shape), train=False)
  return saliency.scalar_model_fn(model, variables, output_index)


def test_vanilla_gradient_matches_closed_form():
  w, x = _weights(), _image()
  np.testing.assert_allclose(saliency.vanilla_gradient(_quadratic(w), x), 2 * w * x, rtol=1e-6)


@pytest.mark.parametrize("magnitude", [False, True])
def test_smoothgrad_converges_to_closed_form(magnitude):
  w, x = _weights(), _image()
  n, noise_frac = 4000, 0.15
  sigma = noise_frac * float(x.max() - x.min())
  got = saliency.smoothgrad(
      _quadratic(w),
      x,
      jax.random.key(7),
      num_samples=n,
      noise_frac=noise_frac,
      magnitude=magnitude,
      chunk_size=1000,
  )
  # Gradient at x + e is 2w(x + e), e ~ N(0, σ²); its square is 4w²(x + e)², var(x + e)² = 4x²σ² + 2σ⁴.
  if magnitude:
    expected = 4 * w**2 * (x**2 + sigma**2)
    std_of_mean = 4 * w**2 * jnp.sqrt(4 * x**2 * sigma**2 + 2 * sigma**4) / np.sqrt(n)
  else:
    expected = 2 * w * x
    std_of_mean = 2 * jnp.abs(w) * sigma / np.sqrt(n)
  assert np.all(np.abs(got - expected) <= 5 * std_of_mean + 1e-5)
  # The tolerance must be tight enough to tell the two variants apart.
  assert not np.allclose(expected, 4 * w**2 * x**2, atol=float(5 * std_of_mean.max()))


def test_smoothgrad_vmap_equals_python_loop_over_same_draws():
  f, x = _tiny_cnn_fn(), _image(1, (12, 12, 1))
  key, n = jax.random.key(11), 9
  noise = saliency.smoothgrad_noise(key, x, n)
  grad = jax.jit(jax.grad(f))
  grads = [grad(x + noise[i]) for i in range(n)]
  loop = sum(grads) / n
  loop_sq = sum(g**2 for g in grads) / n
  vectorised = jax.jit(
      saliency.smoothgrad, static_argnums=0, static_argnames=("num_samples", "magnitude")
  )
  np.testing.assert_allclose(vectorised(f, x, key, num_samples=n), loop, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(
      vectorised(f, x, key, num_samples=n, magnitude=True), loop_sq, rtol=1e-4, atol=1e-8
  )
  # The noise really has the documented scale.
  sigma = 0.15 * float(x.max() - x.min())
  assert 0.8 * sigma < float(noise.std()) < 1.2 * sigma


@pytest.mark.parametrize("chunk_size", [1, 5, 7, 12, 100])
def test_smoothgrad_chunked_equals_unchunked(chunk_size):
  # 12 samples: chunks that divide it, that leave a remainder (after 2 chunks or 1), that exceed it.
  f, x, key = _tiny_cnn_fn(), _image(2, (12, 12, 1)), jax.random.key(5)
  smoothgrad = jax.jit(
      saliency.smoothgrad, static_argnums=0, static_argnames=("num_samples", "chunk_size")
  )
  whole = smoothgrad(f, x, key, num_samples=12)
  chunked = smoothgrad(f, x, key, num_samples=12, chunk_size=chunk_size)
  np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_counts_are_rejected(bad):
  f, x, key = _quadratic(_weights()), _image(), jax.random.key(0)
  with pytest.raises(ValueError, match="chunk_size"):
    saliency.smoothgrad(f, x, key, num_samples=4, chunk_size=bad)
  with pytest.raises(ValueError, match="num_samples"):
    saliency.smoothgrad(f, x, key, num_samples=bad)
  with pytest.raises(ValueError, match="steps"):
    saliency.integrated_gradients(f, x, steps=bad)


def test_non_scalar_function_and_batched_input_are_rejected():
  x = _image()
  with pytest.raises(ValueError, match="f\\(x\\) -> scalar"):
    saliency.vanilla_gradient(lambda x: x.sum(-1), x)
  with pytest.raises(ValueError, match="one image"):
    saliency.vanilla_gradient(lambda x: x.sum(), x[None, None])  # a batch of clips
  # One clip (T, H, W, C) is explained as a whole; occlusion patches stay single-image.
  clip = jnp.stack([x, 2 * x])
  np.testing.assert_allclose(
      saliency.vanilla_gradient(lambda c: (c[1] ** 2).sum(), clip),
      jnp.stack([jnp.zeros_like(x), 4 * x]),
      rtol=1e-6,
  )
  with pytest.raises(ValueError, match="one image \\(H, W, C\\), got"):
    saliency.occlusion_map(lambda c: c.sum(), clip, patch=4, stride=4)


@pytest.mark.parametrize("rule", ["trapezoid", "midpoint"])
def test_integrated_gradients_completeness_on_cnn(rule):
  f, x = _tiny_cnn_fn(), _image(4, (12, 12, 1))
  ig = jax.jit(saliency.integrated_gradients, static_argnums=0, static_argnames=("steps", "rule"))
  baseline = jnp.full_like(x, -0.5)
  for base in (None, baseline):
    attributions = ig(f, x, base, steps=50, rule=rule)
    change = f(x) - f(jnp.zeros_like(x) if base is None else base)
    assert abs(float(change)) > 1e-3
    assert abs(float(attributions.sum() - change)) < 0.01 * abs(float(change))
  # Too few steps is visibly worse: the check above has teeth.
  change = f(x) - f(baseline)
  coarse_error = abs(float(ig(f, x, baseline, steps=1, rule=rule).sum() - change))
  assert coarse_error > abs(float(ig(f, x, baseline, steps=50, rule=rule).sum() - change))


def test_integrated_gradients_exact_for_linear_and_chunked_equals_unchunked():
  w, x = _weights(), _image()
  np.testing.assert_allclose(
      saliency.integrated_gradients(lambda v: jnp.sum(w * v), x, steps=3),
      w * x,
      rtol=1e-5,
      atol=1e-6,
  )
  f = _tiny_cnn_fn()
  x = _image(6, (12, 12, 1))
  ig = jax.jit(
      saliency.integrated_gradients, static_argnums=0, static_argnames=("steps", "chunk_size")
  )
  whole = ig(f, x, steps=10)
  for chunk_size in (3, 4, 11):  # 11 gradients with the trapezoid rule
    np.testing.assert_allclose(
        ig(f, x, steps=10, chunk_size=chunk_size), whole, rtol=1e-5, atol=1e-7
    )
  with pytest.raises(ValueError, match="rule"):
    saliency.integrated_gradients(f, x, rule="simpson")


def test_jit_and_vmap_over_a_batch_match_single_images():
  f = _tiny_cnn_fn()
  batch = jax.random.normal(jax.random.key(8), (3, 12, 12, 1))
  keys = jax.random.split(jax.random.key(9), 3)
  methods = {
      "vanilla": lambda x, k: saliency.vanilla_gradient(f, x),
      "smoothgrad": lambda x, k: saliency.smoothgrad(f, x, k, num_samples=5, chunk_size=2),
      "ig": lambda x, k: saliency.integrated_gradients(f, x, steps=6, chunk_size=4),
      "occlusion": lambda x, k: saliency.occlusion_map(f, x, patch=4, stride=4, chunk_size=4),
  }
  for name, method in methods.items():
    batched = jax.jit(jax.vmap(method))(batch, keys)
    one = jax.jit(method)
    singles = jnp.stack([one(x, k) for x, k in zip(batch, keys)])
    np.testing.assert_allclose(batched, singles, rtol=1e-4, atol=1e-6, err_msg=name)


def _region_signal(height=16, width=16):
  region = np.zeros((height, width), bool)
  region[4:8, 10:14] = True
  return jnp.asarray(region), lambda x: jnp.sum(x[..., 0] * region)


def test_occlude_changes_output_only_where_the_signal_is():
  region, f = _region_signal()
  x = jnp.ones((16, 16, 1))
  before, after = saliency.occlude(f, x, region)
  assert float(before) == 16.0 and float(after) == 0.0
  elsewhere = jnp.zeros((16, 16), bool).at[10:16, 0:6].set(True)
  before, after = saliency.occlude(f, x, elsewhere)
  assert float(before) == float(after) == 16.0
  _, after = saliency.occlude(f, x, region, fill=0.5)
  assert float(after) == 8.0
  with pytest.raises(ValueError, match="mask shape"):
    saliency.occlude(f, x, region[:8])


def test_occlusion_map_lights_up_the_signal_region():
  region, f = _region_signal()
  x = jnp.ones((16, 16, 1))
  heat = saliency.occlusion_map(
      f, x, patch=4, stride=3
  )  # starts 0,3,6,9,12: last patch flush with edge
  assert heat.shape == (16, 16)
  assert bool(region[np.unravel_index(int(jnp.argmax(heat)), heat.shape)])
  assert float(heat[region].min()) > 0.0
  # Pixels that no patch touching the region covers get exactly zero.
  assert float(jnp.abs(heat[12:, :8]).max()) == 0.0
  np.testing.assert_allclose(
      saliency.occlusion_map(f, x, patch=4, stride=3, chunk_size=7), heat, atol=1e-6
  )
  score = saliency.localisation_score(heat, region)
  assert float(score["ratio"]) > 2.0 and float(score["pointing_hit"]) == 1.0


def test_patch_starts_cover_the_image():
  assert saliency.patch_starts(16, 4, 3) == [0, 3, 6, 9, 12]
  assert saliency.patch_starts(299, 16, 8)[-1] == 283
  with pytest.raises(ValueError, match="larger"):
    saliency.patch_starts(8, 16, 8)


def test_localisation_score_on_synthetic_maps():
  region = np.zeros((20, 20), bool)
  region[5:10, 2:10] = True
  area = region.mean()
  inside = np.where(region, 1.0, 0.0)[..., None] * np.array([1.0, -2.0])  # |.| summed over channels
  score = saliency.localisation_score(inside, region)
  assert float(score["area_fraction"]) == pytest.approx(area)
  assert float(score["mass_in_region"]) == pytest.approx(1.0)
  assert float(score["ratio"]) == pytest.approx(1 / area, rel=1e-5)
  assert float(score["pointing_hit"]) == 1.0

  uniform = saliency.localisation_score(np.ones((20, 20)), region)
  assert float(uniform["ratio"]) == pytest.approx(1.0, rel=1e-5)

  outside = np.where(region, 0.0, 1.0)
  score = saliency.localisation_score(outside, region)
  assert float(score["ratio"]) == 0.0 and float(score["pointing_hit"]) == 0.0

  assert np.isnan(float(saliency.localisation_score(np.zeros((20, 20)), region)["ratio"]))
  assert np.isnan(
      float(saliency.localisation_score(np.ones((20, 20)), np.zeros((20, 20)))["ratio"])
  )
  with pytest.raises(ValueError, match="region_mask"):
    saliency.localisation_score(np.ones((20, 20)), region[:10])
  # jit- and vmap-able, e.g. over the frames of a clip.
  batched = jax.jit(jax.vmap(saliency.localisation_score, in_axes=(0, None)))(
      np.stack([inside, inside]), region
  )
  assert batched["ratio"].shape == (2,)


class TwoHeads(nn.Module):

  @nn.compact
  def __call__(self, x, *, train: bool):
    pooled = jnp.mean(x, axis=(1, 2))
    return {"ef": nn.Dense(1)(pooled), "sex": nn.Dense(1)(pooled)}


def test_scalar_model_fn_selects_a_head():
  model, x = TwoHeads(), _image(0, (4, 4, 3))
  variables = model.init(jax.random.key(0), x[None], train=False)
  outputs = model.apply(variables, x[None], train=False)
  assert float(saliency.scalar_model_fn(model, variables, head="sex")(x)) == float(
      outputs["sex"][0, 0]
  )
  with pytest.raises(ValueError, match="heads"):
    saliency.scalar_model_fn(model, variables)(x)
  cnn, image = TinyCNN(), _image(0, (12, 12, 1))
  cnn_variables = cnn.init(jax.random.key(3), image[None], train=False)
  second = saliency.scalar_model_fn(cnn, cnn_variables, output_index=1)(image)
  assert float(second) == float(cnn.apply(cnn_variables, image[None], train=False)[0, 1])
  with pytest.raises(ValueError, match="single output"):
    saliency.scalar_model_fn(cnn, cnn_variables, head="ef")(image)


def test_jitter_shifts_are_stratified_over_the_grid():
  shifts = np.asarray(saliency.jitter_shifts(8, 2))
  assert shifts.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] * 2
  assert not np.asarray(saliency.jitter_shifts(3, 0)).any()


def test_jitter_cancels_a_stride_2_checkerboard():
  # f weighs pixels by a ±1 checkerboard: its gradient is the checkerboard itself, the pattern a
  # stride-2 convolution imprints on input gradients. Averaging over the 2×2 shifts cancels it,
  # while a smooth component of the gradient stays.
  rows, cols = np.mgrid[:8, :8]
  checker = jnp.asarray(np.where((rows + cols) % 2, 1.0, -1.0)[..., None], jnp.float32)
  smooth = jnp.ones((8, 8, 1), jnp.float32)
  f = lambda x: jnp.sum((checker + 0.5 * smooth) * x)
  x = _image(4, (8, 8, 1))
  plain = saliency.smoothgrad(f, x, jax.random.key(0), num_samples=4, noise_frac=0.0)
  jittered = saliency.smoothgrad(f, x, jax.random.key(0), num_samples=4, noise_frac=0.0, jitter=2)
  np.testing.assert_allclose(plain, checker + 0.5, atol=1e-6)
  np.testing.assert_allclose(jittered, 0.5 * smooth, atol=1e-6)
