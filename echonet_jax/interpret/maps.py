"""What a saliency map explains and how one video's maps are computed: pure, jit/vmap-able."""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from echonet_jax import tasks as tasks_lib
from echonet_jax.data import normalization
from echonet_jax.errors import ConfigError
from echonet_jax.interpret import saliency

METHODS = ("smoothgrad", "vanilla", "integrated_gradients", "occlusion")


@dataclasses.dataclass(frozen=True)
class Settings:
  """What to compute (``config.saliency``). ``None`` sizes pick defaults from the image size."""

  method: str = "smoothgrad"
  num_samples: int = 50
  noise_frac: float = 0.15
  jitter: int = (
      2  # SmoothGrad: average over jitter × jitter whole-pixel shifts (checkerboard; docs)
  )
  ig_steps: int = 25
  chunk_size: int | None = None
  seed: int = 0
  num_videos: int = 4
  video_ids: tuple[
      str, ...
  ] = ()  # explain these videos of the split instead of the first num_videos
  patch: int | None = None  # sliding-patch occlusion: patch side (default image_size // 12)
  stride: int | None = None  # and stride (default patch // 2)
  frames_per_batch: int | None = None  # lax.map over frames in groups of this many; None: vmap all
  occlusion_dilation: int | None = (
      None  # px; regions are also occluded grown by this (default S // 24)
  )
  fps: float = 10.0  # of the GIF

  def __post_init__(self):
    if self.method not in METHODS:
      raise ConfigError(f"saliency.method={self.method!r}; use one of {METHODS}")
    if isinstance(self.jitter, bool) or not isinstance(self.jitter, int) or self.jitter < 0:
      raise ConfigError(f"saliency.jitter must be an int >= 0, got {self.jitter!r}")
    for name in ("num_samples", "ig_steps", "num_videos"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"saliency.{name} must be a positive int, got {value!r}")
    if not self.noise_frac >= 0:
      raise ConfigError(f"saliency.noise_frac must be >= 0, got {self.noise_frac!r}")

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict | dict | None) -> Settings:
    """From a ``config.saliency`` section; unknown keys are an error, missing ones keep defaults."""
    values = dict(cfg.to_dict() if isinstance(cfg, ml_collections.ConfigDict) else (cfg or {}))
    values.pop("split", None)  # the caller resolves the split
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ConfigError(f"unknown saliency settings {unknown}; known: {sorted(known)}")
    chunk = values.get("chunk_size")
    values["chunk_size"] = (
        int(chunk) if chunk else None
    )  # 0 means "all at once" as in the benchmark
    values["video_ids"] = tuple(values.get("video_ids") or ())
    for name in ("patch", "stride", "frames_per_batch"):
      values[name] = int(values[name]) if values.get(name) else None
    dilation = values.get("occlusion_dilation")
    values["occlusion_dilation"] = int(dilation) if dilation is not None and dilation >= 0 else None
    return cls(**values)


def task_fn(
    model: Any, variables: Any, name: str, label_mean: jax.Array, label_std: jax.Array
) -> saliency.ScalarFn:
  """``f(x)`` for task ``name`` on one image: the logit (binary) or the output in the task's unit."""
  f = saliency.scalar_model_fn(model, variables, head=name)
  if tasks_lib.get_task(name).is_binary:
    return f
  return lambda x: f(x).astype(jnp.float32) * label_std + label_mean


def frame_map(f: saliency.ScalarFn, x: jax.Array, key: jax.Array, settings: Settings) -> jax.Array:
  """The map of one image ``x`` (S, S, C) by ``settings.method``, channels summed: (S, S) float32."""
  black = normalization.BLACK
  if settings.method == "vanilla":
    out = saliency.vanilla_gradient(f, x)
  elif settings.method == "smoothgrad":
    out = saliency.smoothgrad(
        f,
        x,
        key,
        num_samples=settings.num_samples,
        noise_frac=settings.noise_frac,
        chunk_size=settings.chunk_size,
        jitter=settings.jitter,
    )
  elif settings.method == "integrated_gradients":
    out = saliency.integrated_gradients(
        f, x, baseline=black, steps=settings.ig_steps, chunk_size=settings.chunk_size
    )
  else:
    patch = settings.patch or max(4, x.shape[0] // 12)
    return saliency.occlusion_map(
        f,
        x,
        patch=patch,
        stride=settings.stride or max(1, patch // 2),
        fill=black,
        chunk_size=settings.chunk_size,
    ).astype(jnp.float32)
  return out.sum(-1).astype(jnp.float32)


def make_video_maps(model: Any, name: str, settings: Settings) -> Callable[..., jax.Array]:
  """Jitted ``maps(params, batch_stats, label_mean, label_std, images, key) -> (T, S, S)``.

  ``images`` is one normalised video (T, S, S, C); frame t uses key ``split(key, T)[t]``. The
  variables are arguments, not constants baked into the program, so one compilation serves all
  videos (of one shape).
  """

  def maps(params, batch_stats, label_mean, label_std, images, key):
    f = task_fn(model, {"params": params, "batch_stats": batch_stats}, name, label_mean, label_std)
    keys = jax.random.split(key, images.shape[0])
    one = lambda xk: frame_map(f, xk[0], xk[1], settings)
    if settings.frames_per_batch:
      return jax.lax.map(one, (images, keys), batch_size=settings.frames_per_batch)
    return jax.vmap(one)((images, keys))

  return jax.jit(maps)
