"""Two processes on 127.0.0.1 train like one process on the same global batches."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.testing import REPO

_WORKER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    num_processes, process_id, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    from echonet_jax import parallel
    if num_processes > 1:
      assert parallel.maybe_initialize_distributed(f"127.0.0.1:{{port}}", num_processes, process_id)
    import jax
    import numpy as np
    from tests import testing as t
    from echonet_jax.training import step as train
    assert jax.process_count() == num_processes
    config, names, model, tx, state = t.training_setup(tasks=("weight", "sex"))
    mesh = parallel.make_mesh()
    step, _ = train.make_steps(model, tx, config.loss, mesh)
    per_process = 8 // num_processes
    for i in range(2):
      full = t.training_batch(names, n=8, seed=i)
      # Each process loads only its own rows of the global batch.
      local = jax.tree.map(lambda x: x[process_id * per_process:(process_id + 1) * per_process], full)
      state, metrics = step(state, parallel.global_batch(local, mesh))
    leaves = [np.asarray(x) for x in jax.tree.leaves(state.params)]
    np.savez(out, loss=float(metrics["loss"]), *leaves)
""")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
  script = tmp_path / "worker.py"
  script.write_text(_WORKER.format(repo=REPO))
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  subprocess.run(
      [sys.executable, str(script), "1", "0", "0", str(tmp_path / "single.npz")],
      check=True,
      cwd=REPO,
      env=env,
      timeout=600,
  )
  port = str(_free_port())
  procs = [
      subprocess.Popen(
          [sys.executable, str(script), "2", str(i), port, str(tmp_path / f"p{i}.npz")],
          cwd=REPO,
          env=env,
      )
      for i in range(2)
  ]
  for p in procs:
    assert p.wait(timeout=600) == 0
  single = np.load(tmp_path / "single.npz")
  for i in range(2):
    multi = np.load(tmp_path / f"p{i}.npz")
    np.testing.assert_allclose(multi["loss"], single["loss"], rtol=1e-3)
    for key in single.files:
      if key.startswith("arr_"):
        np.testing.assert_allclose(multi[key], single[key], rtol=0, atol=2.5e-3)


@pytest.mark.slow
def test_launch_trains_on_two_processes(tmp_path):
  """The whole loop on 2 processes: sharded Grain streams, gathered validation, one checkpoint set."""
  workdir = tmp_path / "w"
  port = str(_free_port())
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  procs = [
      subprocess.Popen(
          [
              sys.executable,
              os.path.join(REPO, "launch.py"),
              "--config=configs/weight.py:test",
              f"--workdir={workdir}",
              f"--coordinator_address=127.0.0.1:{port}",
              "--num_processes=2",
              f"--process_id={i}",
              "--config.train.evaluate_at_end=False",
          ],
          cwd=REPO,
          env=env,
          stdout=subprocess.PIPE,
          stderr=subprocess.STDOUT,
          text=True,
      )
      for i in range(2)
  ]
  for p in procs:
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out[-3000:]
  assert sorted(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit()) == [3, 6]
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  val = [r for r in rows if "val/weight/mae" in r]
  assert [r["step"] for r in val] == [3, 6]
  assert all(np.isfinite(r["val/weight/mae"]) for r in val)
  # Validation gathered every process's share: all val videos, each once.
  from configs import default  # pylint: disable=g-import-not-at-top
  from echonet_jax.data import prepare as data  # pylint: disable=g-import-not-at-top
  from echonet_jax.data import selection  # pylint: disable=g-import-not-at-top

  cache_dir = data.default_cache_dir(default.get_config("test", task="weight"))
  expected = len(selection.select_videos(cache_dir, "val", tasks=("weight",), views=("A4C",)))
  assert [r["val/num_videos"] for r in val] == [expected, expected]
