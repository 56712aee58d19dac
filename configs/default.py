"""Shared defaults from the paper; every task config starts here.

``get_config(arg)``: ``arg`` is a comma-separated list of modifiers after the colon in
``--config=configs/weight.py:cpu``. ``cpu`` shrinks the run (smaller images, a narrower and shallower
network, a short schedule, a small phantom) while the same code path runs; ``test`` shrinks it further
for the test suite.
"""

from __future__ import annotations

import ml_collections

# The paper tuned learning rate × weight decay by grid search, 24 models a task: 6 × 4 here.
SWEEP_LR = (3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
SWEEP_WEIGHT_DECAY = (1e-3, 1e-4, 1e-5, 0.0)


def get_config(arg: str | None = None, *, task: str = "weight") -> ml_collections.ConfigDict:
  """The whole config tree for ``task``, shrunk by the modifiers in ``arg``."""
  c = ml_collections.ConfigDict()
  c.task = task
  c.tasks = ()  # Several task names: multi-task heads with summed losses.
  c.seed = 0
  c.platform = ""  # "gpu", "tpu" or "cpu" to require a device kind; "" takes what exists.

  c.loss = ml_collections.ConfigDict(
      dict(
          classification="xent",  # or "focal" (the paper's alternative; it did not help)
          regression="mse",  # or "huber"
          focal_gamma=2.0,
          huber_delta=1.0,
      )
  )

  c.data = ml_collections.ConfigDict(
      dict(
          labels_csv="",  # A labels CSV (see echonet_jax/labels.py). Empty: the phantom.
          echonet_dynamic_dir="",  # An EchoNet-Dynamic folder (FileList.csv + Videos/) instead.
          cache_dir="",  # Where the de-identified cache goes; empty: ~/.cache/echonet_jax/...
          num_frames=20,  # frames the cache keeps per video ...
          interval_ms=100.0,  # ... this far apart (the cache's frame rate)
          # Clip models (model.name="r2plus1d_18") read clip_frames cache frames clip_interval_ms apart
          # (EchoNet-Dynamic: 32 frames, every 2nd at 50 fps); see echonet_jax/data/windows.py.
          clip_frames=32,
          clip_interval_ms=40.0,
          image_size=0,  # 0: the source's native size, 299 (DICOM, phantom) or 112 (EchoNet-Dynamic)
          channels=1,
          views=(
              "A4C",
          ),  # kept by the cache build and the pipeline; rows without a view are kept; ()=all
          label_ranges="",  # e.g. "weight=1:500": plausible label ranges other than tasks.py's
          view_model="",  # a trained view workdir: fills blank views of the labels CSV (docs/views.md)
          view_min_confidence=0.5,  # predicted views below this probability are left out and listed
          default_fps=30.0,  # assumed when a file has no plausible timing (1-1,000 ms a frame)
          preprocess_workers=2,
          split_seed=0,
          test_frac=0.1,
          val_frac=0.1,
      )
  )
  c.data.phantom = ml_collections.ConfigDict(
      dict(
          num_studies=2000,
          rows=480,
          cols=640,
          frame_time_ms=33.3,
          duration_s=2.2,
          seed=0,
          views="A4C",  # comma list of phantom.VIEW_CLASSES, or "all": one video of each per study
      )
  )

  c.aug = ml_collections.ConfigDict(dict(rotation_deg=20.0, brightness=0.1))

  c.model = ml_collections.ConfigDict(
      dict(
          name="inception_resnet_v1",  # or "r2plus1d_18" (clips; see configs/ef_video.py)
          width=1.0,
          blocks=(5, 10, 5),
          dropout_rate=0.2,
          dtype="bfloat16",
      )
  )

  c.optim = ml_collections.ConfigDict(
      dict(
          lr=1e-4,
          weight_decay=1e-4,
          schedule="constant",
          warmup_steps=0,
          final_lr_frac=0.0,
      )
  )

  c.train = ml_collections.ConfigDict(
      dict(
          batch_size=128,  # global, over all devices and hosts
          steps=60_000,
          log_every=100,
          eval_every=2_000,
          checkpoint_every=2_000,
          keep_checkpoints=2,
          workers=8,  # Grain worker processes per host
          prefetch=2,
          eval_videos_per_batch=8,
          evaluate_at_end=True,  # evaluate the best checkpoint on eval.split when training ends
      )
  )

  c.eval = ml_collections.ConfigDict(dict(split="test", n_boot=1000))

  c.saliency = ml_collections.ConfigDict(
      dict(
          split="test",
          num_videos=4,
          video_ids=(),
          method="smoothgrad",
          num_samples=50,
          noise_frac=0.15,
          ig_steps=25,
          jitter=2,  # SmoothGrad: average over 2x2 pixel shifts, cancels the stride-2 checkerboard
          chunk_size=0,  # >0 bounds memory on a GPU; on XLA:CPU chunked gradients run ~3x slower
          frames_per_batch=0,  # >0: lax.map over frames in groups of this many instead of one vmap
          patch=0,
          stride=0,  # sliding occlusion patch (0: image_size // 12, patch // 2)
          occlusion_dilation=-1,  # px a region grows by when occluded (-1: image_size // 24)
          seed=0,
          fps=10.0,
      )
  )

  # --mode=sweep trains every (lr, weight_decay) of the grid; see docs/sweep.md.
  c.sweep = ml_collections.ConfigDict(
      dict(
          lr=SWEEP_LR,
          weight_decay=SWEEP_WEIGHT_DECAY,
          strategy="auto",  # "vmap" (stacked), "sequential", or "auto": the faster on this platform
          members_per_program=0,  # vmap: members stacked per program (0: all); bounds memory
          members=(),  # member indices this job trains (array jobs); () = the whole grid
      )
  )

  for modifier in (arg or "").split(","):
    modifier = modifier.strip()
    if not modifier:
      continue
    if modifier not in _MODIFIERS:
      raise ValueError(f"unknown config argument {modifier!r}; known: {', '.join(_MODIFIERS)}")
    _MODIFIERS[modifier](c)
  return c


def schedule(
    c: ml_collections.ConfigDict, steps: int, every: int, **train
) -> ml_collections.ConfigDict:
  """Sets ``c.train``: ``steps`` steps, an eval and a checkpoint every ``every``, and ``train``."""
  c.train.update(steps=steps, eval_every=every, checkpoint_every=every, **train)
  return c


def _cpu(c: ml_collections.ConfigDict) -> None:
  """A run that finishes in minutes on a 2-core CPU: same code path, smaller everything."""
  c.data.image_size = 96
  c.data.phantom.update(num_studies=500, rows=240, cols=320, frame_time_ms=50.0, duration_s=2.1)
  c.data.preprocess_workers = 2
  c.model.update(width=0.25, blocks=(1, 2, 1), dtype="float32")
  c.optim.update(lr=1e-3, weight_decay=1e-5, schedule="cosine", warmup_steps=50)
  schedule(c, 2000, 500, batch_size=32, log_every=50, workers=1)
  c.eval.n_boot = 200


def _test(c: ml_collections.ConfigDict) -> None:
  """Tiny: for unit tests of the loop."""
  _cpu(c)
  c.data.image_size = 75
  c.data.phantom.update(num_studies=40, rows=120, cols=160)
  c.model.update(width=0.125, blocks=(1, 1, 1))
  schedule(c, 6, 3, batch_size=8, log_every=2, workers=0)
  c.sweep.update(lr=(1e-3, 3e-4), weight_decay=(1e-4, 0.0))
  c.eval.n_boot = 50


_MODIFIERS = {"cpu": _cpu, "test": _test}
