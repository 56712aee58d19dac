"""The stride-2 checkerboard in SmoothGrad maps, without and with 2×2 pixel jitter: one JSON line.

  python benchmarks/saliency_checkerboard.py --workdir=DIR [--videos=3 --frames=4 --samples=48]
      [--out=docs/saliency_checkerboard.png]

For the first ``videos`` test videos of the workdir's cache, computes SmoothGrad maps of ``frames``
frames with ``jitter`` 0 and 2 (same noise draws otherwise) and reports the share of each mean |map|'s
power on the period-2 FFT lines (``scores.stride_power``), averaged over videos. With ``--out``, writes
a side-by-side picture of the first video (nearest-neighbour upsampling, so the pattern stays visible).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from echonet_jax.data import normalization  # pylint: disable=g-import-not-at-top,wrong-import-position
from echonet_jax.data import prepare
from echonet_jax.interpret import maps
from echonet_jax.interpret import scores
from echonet_jax.interpret import sources
from echonet_jax.interpret import viz
from echonet_jax.training import restore


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--videos", type=int, default=3)
  parser.add_argument("--frames", type=int, default=4)
  parser.add_argument("--samples", type=int, default=48)
  parser.add_argument("--out", default="")
  args = parser.parse_args()
  trained = restore.load(args.workdir)
  config = trained.config
  name = trained.names[0]
  videos = list(
      sources.split_videos(
          prepare.prepare_cache(config),
          "test",
          trained.names,
          None,
          config.data.image_size,
          args.videos,
      )
  )
  state = trained.state
  shares: dict[int, list[float]] = {0: [], 2: []}
  first: dict[int, np.ndarray] = {}
  start = time.perf_counter()
  for jitter in shares:
    settings = maps.Settings(num_samples=args.samples, jitter=jitter)
    fn = maps.make_video_maps(trained.model, name, settings)
    for video in videos:
      images = normalization.to_images(video.frames[: args.frames], config.data.channels)
      out = np.asarray(
          fn(
              state.params,
              state.batch_stats,
              state.label_mean[name],
              state.label_std[name],
              images,
              jax.random.key(0),
          )
      )
      mean_map = np.abs(out).mean(0)
      shares[jitter].append(scores.stride_power(mean_map))
      first.setdefault(jitter, mean_map)
  result = {
      "benchmark": "saliency_checkerboard",
      "task": name,
      "image_size": config.data.image_size,
      "videos": len(videos),
      "frames": args.frames,
      "samples": args.samples,
      "period2_share_no_jitter": float(np.mean(shares[0])),
      "period2_share_jitter2": float(np.mean(shares[2])),
      "seconds": round(time.perf_counter() - start, 1),
  }
  print(json.dumps(result))
  if args.out:
    frame = videos[0].frames[0]
    size = 4 * frame.shape[0]
    figure = Figure(figsize=(3 * size / 100 + 0.6, size / 100 + 0.9), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3)
    axes[0].imshow(viz.upsample(frame / 255.0, size, smooth=False), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("frame")
    for axis, jitter in zip(axes[1:], (0, 2)):
      axis.imshow(
          viz.upsample(viz.to_display_map(first[jitter]), size, smooth=False),
          cmap="inferno",
          vmin=0,
          vmax=1,
      )
      label = "no jitter" if not jitter else "2×2 px jitter"
      axis.set_title(f"SmoothGrad, {label}\nperiod-2 power {100 * np.mean(shares[jitter]):.1f}%")
    for axis in axes:
      axis.set_axis_off()
    figure.suptitle(
        f"{name} model, mean |map| over {args.frames} frames ({args.samples} samples, "
        "noise 0.15); nearest-neighbour upsampling",
        fontsize=12,
    )
    figure.savefig(args.out)


if __name__ == "__main__":
  main()
