"""What the model tests share to keep compilation short on CPU (see tests/conftest.py)."""

import jax


def key(seed: int) -> jax.Array:
    """A PRNG key for tests whose assertions do not depend on the random stream: "rbg" keys
    compile in a fraction of threefry's time on CPU."""
    return jax.random.key(seed, impl="rbg")
