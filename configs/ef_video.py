"""EF from clips: R(2+1)D-18 as in EchoNet-Dynamic (Ouyang et al. 2020); ``:cpu`` / ``:test`` shrink.

Full size follows EchoNet-Dynamic: 32-frame clips, frames 40 ms apart, 112 px, batch 20, the
torchvision ``r2plus1d_18`` topology (no dropout). The cache keeps 50 frames 40 ms apart (2 s), so
training clips start anywhere in the first 18 frames and evaluation averages the 2 clips that cover
the video. Grayscale (``channels=1``): the cache is grey. See docs/video.md.
"""

from configs import default


def get_config(arg=None):
  modifiers = [m.strip() for m in (arg or "").split(",") if m.strip()]
  c = default.get_config(",".join(m for m in modifiers if m in ("cpu", "test")), task="ef")
  unknown = [m for m in modifiers if m not in ("cpu", "test")]
  if unknown:
    raise ValueError(f"unknown config argument {unknown[0]!r}; known: cpu, test")
  c.model.update(
      name="r2plus1d_18", width=1.0, blocks=(2, 2, 2, 2), dropout_rate=0.0, dtype="bfloat16"
  )
  c.data.update(
      image_size=112,
      channels=1,
      num_frames=50,
      interval_ms=40.0,
      clip_frames=32,
      clip_interval_ms=40.0,
  )
  c.train.update(batch_size=20, steps=15_000, eval_videos_per_batch=4)
  if "cpu" in modifiers:
    _cpu(c)
  if "test" in modifiers:
    _test(c)
  return c


def _cpu(c):
  """~20 min alone on a 2-core CPU: 16 grey 64 px frames 100 ms apart, a thin one-block network.

  The cache keeps 40 frames 50 ms apart (the :cpu phantom's 2.1 s), so a 1.5 s clip (one beat at
  48-115 bpm and more) starts at any of 10 positions and at either sampling phase.
  """
  c.model.update(width=0.125, blocks=(1, 1, 1, 1), dtype="float32")
  c.data.update(
      image_size=64, num_frames=40, interval_ms=50.0, clip_frames=16, clip_interval_ms=100.0
  )
  c.optim.update(lr=1e-3, weight_decay=1e-5, schedule="cosine", warmup_steps=30)
  default.schedule(c, 300, 100, batch_size=8, log_every=25, workers=1, eval_videos_per_batch=8)


def _test(c):
  """Tiny, for the test suite: the :test phantom's 20-frame cache, 8-frame clips at 32 px."""
  c.model.update(width=0.125, blocks=(1, 1, 1, 1), dtype="float32")
  c.data.update(
      image_size=32, num_frames=20, interval_ms=100.0, clip_frames=8, clip_interval_ms=100.0
  )
  default.schedule(c, 2, 2, batch_size=4, log_every=1, workers=0, eval_videos_per_batch=4)
