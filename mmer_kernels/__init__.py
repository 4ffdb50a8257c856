"""Pallas kernels (Triton lowering on GPU; Mosaic GPU for attention on Hopper) for the costly ops
of the models, with their references.

Imports jax only (no flax, no ``mmer_jax``), so the kernels can be used and tested on their own.

| name | what |
|---|---|
| :func:`attention` | masked multi-head attention, fused forward and backward |
| :func:`attention_reference` | the same semantics in plain jnp (the off-GPU path, and the truth) |
| :class:`AttentionBlockSizes` | tile sizes and Triton launch parameters of :func:`attention` |
| :func:`dynamic_conv` | dynamic convolution (Wu et al. 2019), fused forward and backward |
| :func:`dynamic_conv_reference` | the same semantics in plain jnp |
| :class:`DynamicConvBlockSizes` | tile size and Triton launch parameters of :func:`dynamic_conv` |
| :class:`Partition` | mesh axes the ops split batch and heads over under a sharded jit |

Each op runs the Pallas kernel on GPU and its reference elsewhere; ``implementation="xla"`` or
``"pallas"`` forces one, ``interpret=True`` runs the kernel in Pallas' interpreter (any backend).
Attention also takes ``"mosaic"``: its Mosaic GPU kernels (Hopper; bfloat16/float16, no bias or
masks), the path that remains when jax drops Pallas' deprecated Triton backend (then "pallas"
runs them; the dynamic convolution falls back to XLA).
Under a sharded jit the kernel path runs in a ``jax.shard_map`` over the batch (and head) mesh
axes of its ``partition`` (default: the ``"data"`` axis of the context mesh), no collectives.

Note: the ops share their names with the modules that define them, so ``mmer_kernels.attention``
is the function once this package is imported. Import the modules' other names with ``from
mmer_kernels.attention import tuning_key`` (or
``importlib.import_module("mmer_kernels.attention")``).

The package was called ``kernels`` until Hugging Face transformers 5 began to depend on a PyPI
package of that name (``kernels``): both installed in one environment, each shadowed the other.
"""

from mmer_kernels._reference import attention_reference, dynamic_conv_reference
from mmer_kernels._sharding import Partition
from mmer_kernels.attention import BlockSizes as AttentionBlockSizes
from mmer_kernels.attention import attention
from mmer_kernels.dynamic_conv import BlockSizes as DynamicConvBlockSizes
from mmer_kernels.dynamic_conv import dynamic_conv

__all__ = [
    "AttentionBlockSizes",
    "DynamicConvBlockSizes",
    "Partition",
    "attention",
    "attention_reference",
    "dynamic_conv",
    "dynamic_conv_reference",
]
