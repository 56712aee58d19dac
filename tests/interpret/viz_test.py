"""Tests for echonet_jax.interpret.viz: display maps, overlays, and the PNG/GIF/panel files they produce."""

from __future__ import annotations

import numpy as np
from PIL import Image
import pytest

from echonet_jax.interpret import viz


def _frame(height=24, width=32):
  return (np.arange(height * width).reshape(height, width) % 256).astype(np.uint8)


def _heat(height=24, width=32):
  heat = np.zeros((height, width), np.float32)
  heat[5:12, 8:20] = 1.0
  return heat


def test_to_display_map_clips_at_99th_percentile_and_scales():
  rng = np.random.default_rng(0)
  saliency = rng.uniform(0.0, 1.0, (50, 40, 2)).astype(np.float32)
  saliency[3, 4] = [-900.0, 100.0]  # one outlier, negative in one channel
  heat = viz.to_display_map(saliency)
  summed = np.abs(saliency).sum(-1)
  top = np.percentile(summed, 99)
  assert heat.shape == (50, 40) and heat.dtype == np.float32
  assert heat.min() >= 0.0 and heat.max() == 1.0
  assert heat[3, 4] == 1.0
  np.testing.assert_allclose(heat, np.minimum(summed, top) / top, rtol=1e-6)
  # Without the clip the outlier would squash everything else below 0.002.
  assert np.median(heat) > 0.3
  assert np.mean(heat == 1.0) == pytest.approx(0.01, abs=0.002)
  assert not viz.to_display_map(np.zeros((4, 4))).any()
  with pytest.raises(ValueError, match="saliency"):
    viz.to_display_map(np.zeros((2, 4, 4, 1)))


def test_video_display_maps_share_one_scale():
  saliency = np.stack([np.full((8, 8), 1.0), np.full((8, 8), 2.0)])
  heats = viz.video_display_maps(saliency)
  np.testing.assert_allclose(heats[0], 0.5)
  np.testing.assert_allclose(heats[1], 1.0)


@pytest.mark.parametrize(
    "frame",
    [
        _frame(),
        _frame()[..., None],
        np.repeat(_frame()[..., None], 3, -1),
        _frame().astype(np.float32) / 255.0,
        (_frame().astype(np.float32) - 128.0) / 50.0,  # standardised: min-max scaled
    ],
)
def test_overlay_shape_dtype_and_blend(frame):
  heat = _heat()
  rgb = viz.overlay(frame, heat, cmap="jet", alpha=0.5)
  assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
  gray = np.asarray(frame, np.float32).reshape(24, 32, -1).mean(-1)
  gray = (gray - gray.min()) / (gray.max() - gray.min())
  # Where the heat is zero the frame shows through unchanged, in gray.
  np.testing.assert_allclose(
      rgb[heat == 0] / 255.0, np.repeat(gray[heat == 0, None], 3, -1), atol=1 / 255
  )
  # Where it is one, the colour is half jet's red end (and half the frame).
  hot = rgb[heat == 1].astype(np.float32) / 255.0
  expected = 0.5 * np.repeat(gray[heat == 1, None], 3, -1) + 0.5 * np.array([0.5, 0.0, 0.0])
  np.testing.assert_allclose(hot, expected, atol=2 / 255)


def test_overlay_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="does not match"):
    viz.overlay(_frame(), _heat(10, 10))
  with pytest.raises(ValueError, match="frame must be"):
    viz.overlay(np.zeros((2, 24, 32, 1)), _heat())


def test_save_png_round_trips(tmp_path):
  rgb = viz.overlay(_frame(), _heat())
  path = tmp_path / "nested" / "overlay.png"
  viz.save_png(path, rgb)
  with Image.open(path) as image:
    assert image.format == "PNG"
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), rgb)
  with pytest.raises(ValueError, match="uint8"):
    viz.save_png(tmp_path / "bad.png", rgb.astype(np.float32))


def test_save_gif_writes_all_frames(tmp_path):
  frames = np.stack([_frame()] * 20)
  saliency = np.stack([np.roll(_heat(), t, axis=1) for t in range(20)])
  rgb_frames = viz.video_overlays(frames, saliency)
  assert rgb_frames.shape == (20, 24, 32, 3) and rgb_frames.dtype == np.uint8
  path = tmp_path / "clip.gif"
  viz.save_gif(path, rgb_frames, fps=10)
  with Image.open(path) as image:
    assert image.format == "GIF" and image.n_frames == 20 and image.size == (32, 24)
    assert image.info["duration"] == 100
    image.seek(5)
    # GIF is paletted; the hot spot moves with the saliency map.
    shown = np.asarray(image.convert("RGB")).astype(int)
    assert np.abs(shown - rgb_frames[5]).mean() < 8
  with pytest.raises(ValueError, match="no frames"):
    viz.save_gif(tmp_path / "empty.gif", [])
  with pytest.raises(ValueError, match="frames but"):
    viz.video_overlays(frames[:3], saliency)


def _image_extents(figure):
  renderer = figure.canvas.get_renderer()
  return [ax.get_window_extent(renderer) for ax in figure.axes if ax.get_images()]


def test_panel_is_titled_with_a_colour_bar_and_images_of_at_least_512_px(tmp_path):
  mask = np.zeros((24, 32), bool)
  mask[4:14, 6:22] = True
  frame, heat = _frame(24, 24), _heat(24, 24)
  path = tmp_path / "panel.png"
  figure = viz.panel(
      path, frame, heat * 3.0, mask[:, :24], title="toy: prediction 70 kg", unit="kg per input unit"
  )
  with Image.open(path) as image:
    assert image.format == "PNG"
    width, height = image.size
  assert width >= 3 * 512 and height >= 512
  images = _image_extents(figure)
  assert len(images) == 3  # frame, map, overlay (the colour bar is the fourth axes)
  for box in images:
    assert min(box.width, box.height) >= 512, box
  assert figure.get_suptitle() == "toy: prediction 70 kg"
  bar = [ax for ax in figure.axes if ax.get_ylabel().startswith("|saliency|")]
  assert bar and "kg per input unit" in bar[0].get_ylabel()
  with pytest.raises(ValueError, match="does not match"):
    viz.panel(tmp_path / "bad.png", frame, _heat(10, 10))


def test_summary_sheet_captions_every_video(tmp_path):
  tiles = [(_frame(24, 24), _heat(24, 24), f"video {i}") for i in range(5)]
  figure = viz.summary_sheet(tmp_path / "summary.png", tiles, title="sheet", columns=4)
  titles = [ax.get_title() for ax in figure.axes if ax.get_images()]
  assert titles == [f"video {i}" for i in range(5)]
  with Image.open(tmp_path / "summary.png") as image:
    assert image.size[0] >= 4 * 320
  with pytest.raises(ValueError, match="no videos"):
    viz.summary_sheet(tmp_path / "none.png", [])
