"""The paper's ten prediction tasks: what each label is and how it is learned.

Label columns in a labels CSV (and in the phantom's labels.csv) carry the task name. Units:
binary tasks are 0/1 (``sex``: 1 = male), ``esv``/``edv`` in mL, ``ef`` in percent, ``age`` in years,
``weight`` in kg and ``height`` in metres. Each task has a plausible ``valid_range`` (inclusive);
a label outside it is a ``file:line`` error of the labels CSV (override per task with
``labels.parse_ranges``, e.g. the preprocess flag ``--label_ranges weight=1:500``).
"""

from __future__ import annotations

import dataclasses
import math

BINARY = "binary"
REGRESSION = "regression"


@dataclasses.dataclass(frozen=True)
class Task:
  """One prediction target."""

  name: str
  kind: str  # BINARY or REGRESSION
  unit: str
  description: str
  valid_range: tuple[float, float] = (-math.inf, math.inf)

  @property
  def is_binary(self) -> bool:
    return self.kind == BINARY


_ALL = (
    Task("pacemaker_leads", BINARY, "", "pacemaker or defibrillator leads"),
    Task("severe_lae", BINARY, "", "severe left atrial enlargement"),
    Task("lvh", BINARY, "", "left ventricular hypertrophy"),
    Task("sex", BINARY, "", "sex (1 = male)"),
    Task("esv", REGRESSION, "mL", "end-systolic volume", (0.0, math.inf)),
    Task("edv", REGRESSION, "mL", "end-diastolic volume", (0.0, math.inf)),
    Task("ef", REGRESSION, "%", "ejection fraction", (0.0, 100.0)),
    Task("age", REGRESSION, "years", "age", (0.0, 120.0)),
    Task("weight", REGRESSION, "kg", "weight", (1.0, 400.0)),
    Task("height", REGRESSION, "m", "height", (0.3, 2.5)),
)

TASKS: dict[str, Task] = {t.name: t for t in _ALL}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def get_task(name: str) -> Task:
  """Returns the task called ``name``; raises ConfigError (a ValueError) naming the known tasks."""
  try:
    return TASKS[name]
  except KeyError:
    from echonet_jax.errors import ConfigError  # pylint: disable=g-import-not-at-top
    raise ConfigError(
        f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}") from None
