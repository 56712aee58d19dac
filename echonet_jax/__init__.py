"""echonet-jax: EchoNet (Ghorbani, Ouyang et al., npj Digit. Med. 2020) in JAX/Flax."""

__version__ = "0.1.0"
