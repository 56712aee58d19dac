"""Stacked sweep members: the 2-D ("member", "data") mesh trains them like one member at a time."""

import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from echonet_jax.training import sweep
from tests.testing import REPO

# 2 members (different lr and weight decay) on 4 fake CPU devices: a (2 member x 2 data) mesh,
# against each member trained alone on a 1-device mesh.
_SCRIPT = textwrap.dedent("""
    import sys
    import jax
    jax.config.update("jax_num_cpu_devices", 4)
    sys.path.insert(0, {repo!r})
    import numpy as np
    from tests import testing as t
    from echonet_jax import parallel
    from echonet_jax.training import step
    from echonet_jax.training import sweep
    config, names, model, tx, state = t.training_setup()
    loss_fn = step.make_loss(config.loss, step.task_kinds(names))
    members = [step.with_hyperparams(state, 1e-3, 1e-4), step.with_hyperparams(state, 3e-4, 0.0)]
    mesh = sweep.member_mesh(2)
    assert dict(mesh.shape) == {{"member": 2, "data": 2}}, mesh
    train_fn, eval_fn, sharding = sweep.make_stacked_steps(model, tx, loss_fn, mesh, 2)
    stacked = jax.device_put(sweep.stack(members), sharding)
    one_mesh = parallel.make_mesh(jax.devices()[:1])
    one_train, one_eval = step.make_steps(model, tx, loss_fn, one_mesh)
    alone = [jax.device_put(jax.tree.map(np.array, m), parallel.replicated(one_mesh))
             for m in members]  # copies: the step donates its state
    for i in range(2):
      batch = t.training_batch(names, seed=i)
      stacked, metrics = train_fn(stacked, parallel.global_batch(batch, mesh))
      alone = [one_train(m, parallel.global_batch(batch, one_mesh))[0] for m in alone]
    images = t.training_batch(names, seed=5)["image"]
    out = eval_fn(stacked, parallel.global_batch(images, mesh))
    ref = [one_eval(m, parallel.global_batch(images, one_mesh))["weight"] for m in alone]
    np.savez(sys.argv[1], stacked=np.stack([out["0:weight"], out["1:weight"]]), alone=np.stack(ref),
             loss=np.asarray(metrics["loss"]))
""")


def test_member_mesh_on_one_device_and_stacking():
  assert dict(sweep.member_mesh(3, jax.devices()[:1]).shape) == {"member": 1, "data": 1}
  stacked = sweep.stack([{"w": np.zeros(2)}, {"w": np.ones(2)}])
  assert stacked["w"].shape == (2, 2)
  np.testing.assert_array_equal(sweep.unstack(stacked, 1)["w"], [1.0, 1.0])


@pytest.mark.slow
def test_members_sharded_over_a_member_data_mesh_train_as_alone(tmp_path):
  script = tmp_path / "run.py"
  script.write_text(_SCRIPT.format(repo=REPO))
  out = tmp_path / "out.npz"
  subprocess.run([sys.executable, str(script), str(out)], check=True, cwd=REPO, timeout=900)
  result = np.load(out)
  assert result["loss"].shape == (2,)
  # Outputs in kg; float noise through Adam stays far below the gap between the two members.
  np.testing.assert_allclose(result["stacked"], result["alone"], rtol=0, atol=0.05)
  assert np.abs(result["alone"][0] - result["alone"][1]).max() > 0.5
