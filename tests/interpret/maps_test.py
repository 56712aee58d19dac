"""Tests for echonet_jax.interpret.maps: settings and the per-frame maps of one video."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from echonet_jax.interpret import maps
from echonet_jax.interpret import saliency


class TwoHeads(nn.Module):
  """A tiny network with the project's interface: ``{task: (B, 1)}`` outputs."""

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = nn.tanh(nn.Conv(3, (3, 3))(x))
    x = nn.BatchNorm(use_running_average=not train)(x)
    x = jnp.mean(x * x, axis=(1, 2))
    return {"weight": nn.Dense(1)(x), "pacemaker_leads": nn.Dense(1)(x)}


def _tiny(channels=1, size=10, frames=3):
  model = TwoHeads()
  variables = model.init(jax.random.key(0), jnp.zeros((1, size, size, channels)), train=False)
  images = jax.random.normal(jax.random.key(1), (frames, size, size, channels))
  return model, variables, images


def test_settings_from_the_default_config_and_bad_values():
  settings = maps.Settings.from_config(default.get_config().saliency)
  assert (settings.method, settings.num_samples, settings.ig_steps) == ("smoothgrad", 50, 25)
  assert maps.Settings.from_config({"chunk_size": 0}).chunk_size is None
  with pytest.raises(ValueError, match="saliency.method"):
    maps.Settings.from_config({"method": "gradcam"})
  with pytest.raises(ValueError, match="unknown saliency settings"):
    maps.Settings.from_config({"num_sample": 8})
  with pytest.raises(ValueError, match="num_samples"):
    maps.Settings(num_samples=0)


@pytest.mark.parametrize("frames_per_batch", [None, 2])
def test_video_maps_are_per_frame_gradients_of_the_task_output(frames_per_batch):
  model, variables, images = _tiny(channels=3)
  settings = maps.Settings(method="vanilla", frames_per_batch=frames_per_batch)
  maps_fn = maps.make_video_maps(model, "weight", settings)
  mean, std = jnp.float32(70.0), jnp.float32(15.0)
  got = maps_fn(variables["params"], variables["batch_stats"], mean, std, images, jax.random.key(0))
  f = saliency.scalar_model_fn(model, variables, head="weight")
  # Regression maps are in the task's unit (× label std); channels are summed.
  expected = jnp.stack([std * jax.grad(f)(x).sum(-1) for x in images])
  assert got.shape == images.shape[:3] and got.dtype == jnp.float32
  np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-7)


def test_binary_task_explains_the_logit_and_methods_run():
  model, variables, images = _tiny()
  f = saliency.scalar_model_fn(model, variables, head="pacemaker_leads")
  g = maps.task_fn(model, variables, "pacemaker_leads", jnp.float32(5.0), jnp.float32(3.0))
  np.testing.assert_allclose(g(images[0]), f(images[0]))  # no unit scaling for a logit
  for method in ("smoothgrad", "integrated_gradients", "occlusion"):
    settings = maps.Settings(method=method, num_samples=3, ig_steps=4, patch=4, stride=3)
    got = maps.make_video_maps(model, "pacemaker_leads", settings)(
        variables["params"], variables["batch_stats"], 0.0, 1.0, images, jax.random.key(2)
    )
    assert (
        got.shape == images.shape[:3] and np.isfinite(got).all() and np.abs(got).sum() > 0
    ), method
