"""Synthetic echo phantom: labelled A4C (and other views') DICOM studies with known causes.

The embedded default dataset of every task config when no labels CSV is given, and the project's
test bed. See docs/phantom.md. CLI: ``python -m echonet_jax.phantom --out DIR --studies N --seed S``.
"""

from __future__ import annotations

from echonet_jax.phantom.anatomy import VIEWS
from echonet_jax.phantom.patients import EXPLAINABLE_VARIANCE
from echonet_jax.phantom.patients import estimate_explainable_variance
from echonet_jax.phantom.patients import sample_patient
from echonet_jax.phantom.render import MASK_NAMES
from echonet_jax.phantom.render import RenderedVideo
from echonet_jax.phantom.render import render_study
from echonet_jax.phantom.render import render_video
from echonet_jax.phantom.views import OTHER_KINDS
from echonet_jax.phantom.views import VIEW_CLASSES
from echonet_jax.phantom.writer import CSV_COLUMNS
from echonet_jax.phantom.writer import ensure_dataset
from echonet_jax.phantom.writer import generate_dataset

explainable_variance = EXPLAINABLE_VARIANCE

__all__ = [
    "CSV_COLUMNS",
    "MASK_NAMES",
    "OTHER_KINDS",
    "RenderedVideo",
    "VIEWS",
    "VIEW_CLASSES",
    "ensure_dataset",
    "estimate_explainable_variance",
    "explainable_variance",
    "generate_dataset",
    "render_study",
    "render_video",
    "sample_patient",
]
