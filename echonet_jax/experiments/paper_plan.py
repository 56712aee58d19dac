"""What ``python -m echonet_jax.experiments.paper`` runs at each scale: its runs and skipped parts.

Pure: :func:`plan` turns (scale, tasks) into :class:`Run` s (one workdir each, with its config) and a
reason for every part it does not run. The parts follow issue 16 (see experiments/paper.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Sequence

import ml_collections

from configs import default
from configs import ef_video
from configs import multitask
from echonet_jax import tasks as tasks_lib
from echonet_jax.errors import ConfigError

PARTS = {
    "main": "1. every task, frame model",
    "ef_two_ways": "2. EF derived from predicted ESV and EDV vs direct EF",
    "multitask": "3. multi-task vs single-task",
    "augmentation": "4. augmentation on vs off",
    "frames": "5. metric vs frames averaged",
    "budget": "6. fixed budget: more patients vs more frames per patient",
    "views": "7. A4C only vs all views",
    "video": "8. video model vs frame model",
}
VOLUME_TASKS = ("ef", "esv", "edv")
BUDGET_SHARE = 4  # the few-patients arm keeps 1 in 4 training patients, with 4x the frames each


@dataclasses.dataclass(frozen=True)
class Scale:
  """How big each run of a scale is; a field left out keeps the config's value."""

  arg: str  # config modifiers (configs/default.py)
  note: str  # one line for the report
  sweep: bool = False  # part 1 through --mode=sweep (the config's lr x weight-decay grid)
  steps: int = 0  # train steps of every frame-model run (0: the config's)
  video_steps: int = 0  # train steps of the video model (0: the config's)
  views_studies: int = 0  # studies of the multi-view phantom (7 videos each)
  studies: int = 0  # phantom studies of every run but the views part's (0: the config's)
  skip: dict[str, str] = dataclasses.field(default_factory=dict)  # part -> why this scale skips it


_TEST_SKIP = (
    "skipped at test scale: it only checks the machinery within ~3 minutes on 2 CPU cores, and "
    "each run adds a compile (~1 min); run --scale=cpu or full for it"
)
SCALES = {
    "test": Scale(
        "test",
        ":test networks (75 px, width 0.125), 6 steps, 40-study phantom; one config per task "
        "(no grid)",
        skip={p: _TEST_SKIP for p in ("augmentation", "budget", "views", "video")},
    ),
    "cpu": Scale(
        "cpu",
        ":cpu networks (96 px, width 0.25, blocks 1,2,1), 1,500 steps of batch 32 a run "
        "(video model: 120 steps of 8 clips), 1,000-study phantom; one config per task (the :cpu "
        "lr 1e-3, wd 1e-5, cosine; no grid)",
        steps=1500,
        video_steps=120,
        views_studies=150,
        studies=1000,
    ),
    "full": Scale(
        "",
        "299 px, the full Inception-ResNet-v1, 60,000 steps of batch 128; part 1 is the 24-model "
        "lr x weight-decay grid per task (--mode=sweep), the other parts one config each",
        sweep=True,
        views_studies=2000,
    ),
}


@dataclasses.dataclass
class Run:
  """One workdir: ``kind`` "train" (modes.train), "sweep" (modes.sweep + evaluate) or "views"."""

  name: str  # its folder under OUT
  part: str
  tasks: tuple[str, ...]
  kind: str
  config: ml_collections.ConfigDict
  common_eval: bool = False  # also evaluated on the main runs' test videos (eval/test_common)
  patient_share: int = 0  # >0: trains on 1 in this many training patients (a labels CSV subset)
  scale: str = "test"
  extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def parse_tasks(text: str) -> tuple[str, ...]:
  """``a,b`` -> task names in the paper's order; ConfigError on an unknown or repeated task."""
  names = [t.strip() for t in text.split(",") if t.strip()]
  if not names:
    raise ConfigError("--tasks is empty; give task names, e.g. --tasks=weight,ef")
  for name in names:
    if name not in tasks_lib.TASK_NAMES:
      raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(tasks_lib.TASK_NAMES)}")
  if len(set(names)) != len(names):
    raise ConfigError(f"--tasks={text} repeats a task")
  return tuple(t for t in tasks_lib.TASK_NAMES if t in names)


def get_scale(name: str) -> Scale:
  if name not in SCALES:
    raise ConfigError(f"unknown scale {name!r}; use one of {', '.join(SCALES)}")
  return SCALES[name]


def _scaled(c: ml_collections.ConfigDict, scale: Scale, steps: int) -> ml_collections.ConfigDict:
  """``c`` with the scale's phantom size and ``steps`` train steps (0: the config's own)."""
  if steps:
    default.schedule(c, steps, max(steps // 3, 1))
  c.train.log_every = min(c.train.log_every, c.train.steps)
  if scale.studies:
    c.data.phantom.num_studies = scale.studies
  return c


def frame_config(scale: Scale, task: str) -> ml_collections.ConfigDict:
  """The scale's single-task frame-model config."""
  return _scaled(default.get_config(scale.arg, task=task), scale, scale.steps)


def aug_tasks(tasks: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
  """Part 4's tasks (one binary and two regression, of those asked) and what is missing, if any."""
  binary = [t for t in tasks if tasks_lib.get_task(t).is_binary][:1]
  regression = [t for t in tasks if tasks_lib.get_task(t).is_regression][:2]
  missing = []
  if not binary:
    missing.append("no binary task was requested")
  if len(regression) < 2:
    missing.append(f"{len(regression)} regression task(s) requested, the part asks for 2")
  return tuple(t for t in tasks if t in binary + regression), ("; ".join(missing) or None)


def plan(scale_name: str, tasks: Sequence[str]) -> tuple[list[Run], dict[str, str], list[str]]:
  """(runs, part -> why skipped, notes on reduced parts) for ``tasks`` at ``scale_name``."""
  scale = get_scale(scale_name)
  tasks = tuple(tasks)
  runs: list[Run] = []
  skipped = dict(scale.skip)
  notes: list[str] = []
  for task in tasks:
    runs.append(
        Run(
            f"main/{task}",
            "main",
            (task,),
            "sweep" if scale.sweep else "train",
            frame_config(scale, task),
        )
    )
  if not set(VOLUME_TASKS) <= set(tasks):
    skipped["ef_two_ways"] = "needs ef, esv and edv among --tasks"
  if len(tasks) < 2:
    skipped["multitask"] = "needs at least two tasks"
  else:
    c = _scaled(multitask.get_config(scale.arg), scale, scale.steps)
    c.task, c.tasks = tasks[0], tasks
    runs.append(Run("multitask", "multitask", tasks, "train", c))
  chosen, missing = aug_tasks(tasks)
  if missing and "augmentation" not in skipped:
    notes.append(f"part 4 (augmentation) reduced: {missing}")
  for task in () if "augmentation" in skipped else chosen:
    c = frame_config(scale, task)
    c.aug.update(rotation_deg=0.0, brightness=0.0)
    base = dict(name=f"aug_off/{task}", part="augmentation", tasks=(task,), kind="train")
    runs.append(Run(config=c, **base))
    if scale.sweep:  # the aug-on arm must share the aug-off arm's single config
      runs.append(
          Run(f"aug_on/{task}", "augmentation", (task,), "train", frame_config(scale, task))
      )
  if not chosen:
    skipped.setdefault("augmentation", missing or "no task")
  if "budget" not in skipped:
    runs += _budget_runs(scale, tasks)
  if "views" not in skipped:
    task = next((t for t in tasks if tasks_lib.get_task(t).is_regression), tasks[0])
    c = frame_config(scale, task)
    runs.append(
        Run(
            "views",
            "views",
            (task,),
            "views",
            c,
            extra={"studies": scale.views_studies, "steps": c.train.steps, "arg": scale.arg},
        )
    )
  video = tuple(t for t in tasks if t in VOLUME_TASKS)
  if not video:
    skipped.setdefault("video", "needs ef, esv or edv among --tasks")
  elif "video" not in skipped:
    c = _scaled(ef_video.get_config(scale.arg), scale, scale.video_steps)
    c.task, c.tasks = video[0], (video if len(video) > 1 else ())
    runs.append(Run("video", "video", video, "train", c))
  for run in runs:
    run.scale = scale_name
  return runs, skipped, notes


def _budget_runs(scale: Scale, tasks: Sequence[str]) -> list[Run]:
  """Part 6: the same steps x batch on all patients x F/4 frames, or 1/4 of them x F frames."""
  task = next((t for t in tasks if tasks_lib.get_task(t).is_regression), tasks[0])
  many = frame_config(scale, task)
  frames, interval = many.data.num_frames, many.data.interval_ms
  many.data.update(num_frames=frames // BUDGET_SHARE, interval_ms=interval * BUDGET_SHARE)
  many.train.evaluate_at_end = False
  few = frame_config(scale, task)
  few.train.evaluate_at_end = False
  return [
      Run("budget/more_patients", "budget", (task,), "train", many, common_eval=True),
      Run(
          "budget/more_frames",
          "budget",
          (task,),
          "train",
          few,
          common_eval=True,
          patient_share=BUDGET_SHARE,
      ),
  ]
