"""Backend switches of the costly ops: one config name, ``implementation``, for all three.

- ``ATTENTION_IMPLEMENTATIONS``: auto, xla, pallas, cudnn, mosaic, interpret (S002's
  ``model.implementation``);
- ``DYNAMIC_CONV_IMPLEMENTATIONS``: auto, xla, pallas, interpret (``implementation`` of the
  ``dynconv_gate`` fusion, e.g. ``model.fusion_options.implementation``);
- ``DEPTHWISE_IMPLEMENTATIONS``: shifted, grouped (S003's ``model.image.implementation``).

"xla" is the plain-XLA reference, "pallas" the Pallas kernel (Triton on GPU), "cudnn" cuDNN's
fused attention (GPU; bf16/f16, lengths only), "mosaic" the Mosaic GPU attention kernels (Hopper;
bf16/f16, lengths only), "interpret" the Pallas kernel in interpret mode
(any backend, slow: for tests), "auto" XLA off GPU and on GPU the fastest one the autotuner
recorded for the call's shape bucket in ``mmer_kernels/tuned_blocks.json`` (Pallas without an
entry).

Partitioning: the kernel paths run in a ``jax.shard_map`` over the ``"data"`` axis of the context
mesh (``mmer_kernels.Partition``'s default), so a data-parallel step traced under
``jax.set_mesh(mesh)`` runs each device's share of the batch with no collective. Without a
context mesh the ops are not split (XLA then gathers the Pallas path's operands).

The depthwise convolution has no Pallas kernel: "shifted" (k*k shifted multiply-adds, fast on
CPU) and "grouped" (XLA's grouped convolution) have the same parameters and outputs.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn

from mmer_registry import Registry

ATTENTION_IMPLEMENTATIONS: Registry[Callable[..., Any]] = Registry("attention implementation")
DYNAMIC_CONV_IMPLEMENTATIONS: Registry[Callable[..., Any]] = Registry(
    "dynamic convolution implementation"
)
DEPTHWISE_IMPLEMENTATIONS: Registry[Callable[..., nn.Module]] = Registry(
    "depthwise convolution implementation"
)


def _attention(q, k, v, *, implementation, interpret, **kw):
    # Imported on call so that importing the models does not load Pallas/Triton.
    from mmer_kernels.attention import attention

    return attention(q, k, v, implementation=implementation, interpret=interpret, **kw)


def _dynamic_conv(x, w, *, implementation, interpret, **kw):
    from mmer_kernels.dynamic_conv import dynamic_conv

    return dynamic_conv(x, w, implementation=implementation, interpret=interpret, **kw)


for _name, _impl, _interpret in (
    ("auto", "auto", False),
    ("xla", "xla", False),
    ("pallas", "pallas", False),
    ("cudnn", "cudnn", False),
    ("mosaic", "mosaic", False),
    ("interpret", "pallas", True),
):
    ATTENTION_IMPLEMENTATIONS.register(
        _name, functools.partial(_attention, implementation=_impl, interpret=_interpret)
    )
    if _name not in ("cudnn", "mosaic"):  # attention-only backends
        DYNAMIC_CONV_IMPLEMENTATIONS.register(
            _name, functools.partial(_dynamic_conv, implementation=_impl, interpret=_interpret)
        )


@DEPTHWISE_IMPLEMENTATIONS.register("shifted")
def _shifted(channels: int, kernel: int, stride: int) -> nn.Module:
    from mmer_jax.models.depthwise import DepthwiseConv

    del channels  # a depthwise convolution keeps its input's channels
    return DepthwiseConv(kernel, stride, name="Conv_0")


@DEPTHWISE_IMPLEMENTATIONS.register("grouped")
def _grouped(channels: int, kernel: int, stride: int) -> nn.Module:
    return nn.Conv(channels, (kernel, kernel), (stride, stride), feature_group_count=channels,
                   use_bias=False, name="Conv_0")


def lookup(registry: Registry, name: str) -> Any:
    """``registry.get(name)``, as a ValueError naming ``implementation`` (model code raises
    ValueError for bad settings; the config layer reports the full key).

    Raises:
      ValueError: no implementation called ``name``.
    """
    try:
        return registry.get(name)
    except KeyError as exc:
        raise ValueError(f"implementation={name!r}: {exc}") from exc
