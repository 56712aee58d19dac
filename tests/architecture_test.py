"""The house rules of docs/architecture.md, checked on the source: one-way imports between stages,
module size, few function-level imports, test files that do not import each other."""

from __future__ import annotations

import ast
import glob
import os

from tests.testing import REPO

PACKAGE = "echonet_jax"
# Stage -> the stages it may import (besides itself). Keep in step with docs/architecture.md.
ALLOWED = {
    "errors": set(),
    "tasks": {"errors"},
    "parallel": {"errors"},
    "writers": set(),
    "phantom": {"tasks", "errors"},
    "data": {"tasks", "errors", "phantom"},
    "models": {"errors"},
    "evaluation": {"data", "models", "tasks", "errors", "parallel", "writers"},
    "training": {"evaluation", "data", "models", "tasks", "errors", "parallel", "writers"},
    "interpret": {
        "training",
        "evaluation",
        "data",
        "models",
        "tasks",
        "errors",
        "parallel",
        "writers",
    },
}
# The edges may import every stage: the CLIs and the studies built from the modes.
EDGES = {"modes", "preprocess", "report", "experiments", "__init__"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LEVEL_IMPORTS = 10


def _modules() -> list[str]:
  paths = sorted(glob.glob(os.path.join(REPO, PACKAGE, "**", "*.py"), recursive=True))
  assert len(paths) > 40, f"found only {len(paths)} modules under {PACKAGE}/"
  return paths


def _stage(path: str) -> str:
  rel = os.path.relpath(path, os.path.join(REPO, PACKAGE))
  return rel.split(os.sep)[0].removesuffix(".py")


def _imported_stages(node: ast.AST) -> list[str]:
  """The first component below ``echonet_jax`` of what an import statement imports."""
  if isinstance(node, ast.Import):
    names = [a.name for a in node.names]
  elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
    if node.module == PACKAGE:
      names = [f"{PACKAGE}.{a.name}" for a in node.names]
    else:
      names = [node.module]
  else:
    return []
  return [n.split(".")[1] for n in names if n.startswith(PACKAGE + ".")]


def _function_level_imports(tree: ast.AST) -> list[ast.AST]:
  found = []
  for fn in ast.walk(tree):
    if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
      found += [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
  return found


def test_stages_import_only_the_stages_below_them():
  wrong = []
  for path in _modules():
    stage = _stage(path)
    if stage in EDGES:
      continue
    assert stage in ALLOWED, f"{path}: a stage docs/architecture.md does not list"
    for node in ast.walk(ast.parse(open(path).read())):
      for target in _imported_stages(node):
        if target != stage and target not in ALLOWED[stage]:
          wrong.append(f"{os.path.relpath(path, REPO)}:{node.lineno} imports {target}")
  assert not wrong, "imports against the stage order:\n" + "\n".join(wrong)


def test_no_module_is_over_400_lines():
  long = {
      os.path.relpath(p, REPO): n
      for p in _modules() + [os.path.join(REPO, "launch.py")]
      if (n := len(open(p).read().splitlines())) > MAX_MODULE_LINES
  }
  assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_few_function_level_imports():
  found = []
  for path in _modules() + [os.path.join(REPO, "launch.py")]:
    for node in _function_level_imports(ast.parse(open(path).read())):
      found.append(f"{os.path.relpath(path, REPO)}:{node.lineno}")
  assert len(found) <= MAX_FUNCTION_LEVEL_IMPORTS, "\n".join(found)


def test_test_files_do_not_import_each_other():
  wrong = []
  for path in glob.glob(os.path.join(REPO, "tests", "**", "*_test.py"), recursive=True):
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith("_test"):
        wrong.append(f"{os.path.relpath(path, REPO)} imports {node.module}")
      if isinstance(node, ast.Import):
        wrong += [
            f"{os.path.relpath(path, REPO)} imports {a.name}"
            for a in node.names
            if a.name.endswith("_test")
        ]
  assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_import():
  """The checks above can fail: an upward import in a made-up data module is found."""
  tree = ast.parse(
      "from echonet_jax.evaluation import view_model\nimport echonet_jax.training.step"
  )
  targets = [t for node in ast.walk(tree) for t in _imported_stages(node)]
  assert targets == ["evaluation", "training"]
  assert not {"evaluation", "training"} & ALLOWED["data"]
  fn = ast.parse("def f():\n  import jax\n  from echonet_jax import tasks\n")
  assert len(_function_level_imports(fn)) == 2
