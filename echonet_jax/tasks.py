"""The paper's ten prediction tasks, and the view task: what each label is and how it is learned.

Label columns in a labels CSV (and in the phantom's labels.csv) carry the task name. Units:
binary tasks are 0/1 (``sex``: 1 = male), ``esv``/``edv`` in mL, ``ef`` in percent, ``age`` in years,
``weight`` in kg and ``height`` in metres. Each task has a plausible ``valid_range`` (inclusive);
a label outside it is a ``file:line`` error of the labels CSV (override per task with
``labels.parse_ranges``, e.g. the preprocess flag ``--label_ranges weight=1:500``).

Categorical tasks have named classes; their label is the class index (a float, NaN when missing) and
the network has one output per class. The one categorical task, ``view``, reads the labels CSV's
``view`` column (see :func:`view_label`). ``TASK_NAMES`` lists the ten numeric label columns only.
"""

from __future__ import annotations

import dataclasses
import math

from echonet_jax.errors import ConfigError

BINARY = "binary"
REGRESSION = "regression"
CATEGORICAL = "categorical"

# The views a view classifier tells apart: the standard views the phantom draws, and "other" (off-axis,
# foreshortened, subcostal and every view not listed). Same order as echonet_jax.phantom.VIEW_CLASSES.
VIEW_CLASSES = ("A4C", "A2C", "A3C", "A5C", "PLAX", "PSAX", "other")
VIEW_TASK = "view"


@dataclasses.dataclass(frozen=True)
class Task:
  """One prediction target."""

  name: str
  kind: str  # BINARY, REGRESSION or CATEGORICAL
  unit: str
  description: str
  valid_range: tuple[float, float] = (-math.inf, math.inf)
  classes: tuple[str, ...] = ()  # CATEGORICAL only: the class names, in output order

  @property
  def is_binary(self) -> bool:
    return self.kind == BINARY

  @property
  def is_categorical(self) -> bool:
    return self.kind == CATEGORICAL

  @property
  def is_regression(self) -> bool:
    return self.kind == REGRESSION

  @property
  def num_outputs(self) -> int:
    """Network outputs of the task: one per class (categorical), else one."""
    return len(self.classes) if self.is_categorical else 1


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

TASK_NAMES: tuple[str, ...] = tuple(t.name for t in _ALL)
TASKS: dict[str, Task] = {
    t.name: t for t in _ALL + (Task(VIEW_TASK, CATEGORICAL, "", "echo view", classes=VIEW_CLASSES),)
}


def view_label(view: str) -> float:
  """The ``view`` task's label of a view name: its class index, NaN when blank.

  Case-insensitive; a view that is not one of the named classes (e.g. ``A4C`` vs ``SUBCOSTAL``)
  counts as ``other``.
  """
  view = (view or "").strip()
  if not view:
    return float("nan")
  upper = [c.upper() for c in VIEW_CLASSES]
  return float(upper.index(view.upper()) if view.upper() in upper else upper.index("OTHER"))


def get_task(name: str) -> Task:
  """Returns the task called ``name``; raises ConfigError (a ValueError) naming the known tasks."""
  try:
    return TASKS[name]
  except KeyError:
    raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
