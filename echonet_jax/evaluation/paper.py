"""The published figures the results are compared with, and which paper fits a data source.

Ghorbani et al. 2020 for every task and data source but EchoNet-Dynamic, whose EF compares with
Ouyang et al. 2020. Used by :mod:`~echonet_jax.evaluation.results_table` and
:mod:`~echonet_jax.evaluation.ef_two_ways`.
"""

from __future__ import annotations

# Ghorbani et al. 2020, 337-patient test set, A4C input (see PAPER.md).
PAPER: dict[str, dict[str, float]] = {
    "pacemaker_leads": {"auc": 0.89, "f1": 0.73},
    "severe_lae": {"auc": 0.86, "f1": 0.68},
    "lvh": {"auc": 0.75, "f1": 0.57},
    "esv": {"r2": 0.74, "mae": 13.3, "baseline_mae": 25.4},
    "edv": {"r2": 0.70, "mae": 20.5, "baseline_mae": 35.4},
    "ef": {"r2": 0.50, "mae": 7.0, "baseline_mae": 9.9},
    "ef_derived": {"r2": 0.33},
    "age": {"r2": 0.46, "mae": 9.8, "baseline_mae": 13.4},
    "sex": {"auc": 0.88},
    "weight": {"r2": 0.56, "mae": 10.7, "baseline_mae": 15.4},
    "height": {"r2": 0.33, "mae": 0.07, "baseline_mae": 0.09},
}
# Ouyang et al., Nature 2020 (EchoNet-Dynamic), its own test set: EF from A4C videos.
ECHONET_DYNAMIC_PAPER: dict[str, dict[str, float]] = {"ef": {"r2": 0.81, "mae": 4.1}}
GHORBANI = "Ghorbani 2020"
OUYANG = "Ouyang 2020 (EchoNet-Dynamic)"
DERIVED_EF = "ef_derived"


def paper_figures(task: str, source: str | None) -> tuple[str, dict[str, float]]:
  """(reference, figures) a task's results compare with: the paper that matches the data source.

  EchoNet-Dynamic caches (cache meta ``source`` "echonet_dynamic") compare EF with EchoNet-Dynamic's own
  figures; a task that paper did not report has no figures. Other sources compare with Ghorbani 2020.
  """
  if source == "echonet_dynamic":
    figures = ECHONET_DYNAMIC_PAPER.get(task, {})
    return (OUYANG if figures else ""), figures
  figures = PAPER.get(task, {})
  return (GHORBANI if figures else ""), figures
