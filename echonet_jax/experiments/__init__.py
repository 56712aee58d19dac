"""Studies built from the modes (the paper's experiments on the phantom)."""
