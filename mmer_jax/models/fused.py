"""The one "encoder per modality -> fusion -> head" assembly of every multimodal system.

S001, S003 and the quickstart build their model as an :class:`EncodersFusionHead`; the fusion
ablation counts a fusion's cost with :class:`FusionOnly`, and the fusion tests train
:class:`FusionOnly` with a head. A system says only which encoder reads which batch keys
(:class:`Branch`), which fusion and which head: the modality order the fusion sees is the
order of ``branches``, which the system takes from its config, never a dict's order
(:mod:`mmer_jax.models.fusion.contract`).

Parameter names are those the systems had before this module (so checkpoints and ported
weights load): an encoder is ``scope`` (``enc_<modality>``), or with ``flat`` its sub-modules
sit directly in the model's scope (S001's and S003's own encoders); the fusion is ``fusion``; the
head is ``Head.scope``, or with ``Head.flat`` its layers sit in the model's scope (S001's
``head_out``, S003's ``fc`` and ``head_out``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import in_scope_of
from mmer_jax.registry import ENCODERS, FUSIONS, HEADS


@dataclasses.dataclass(frozen=True)
class Branch:
    """One modality's encoder as a system configures it (frozen and hashable, as Flax fields).

    Attributes:
      feature: the fusion's name for the modality: its key in the features dict and the aux.
      encoder: an ``ENCODERS`` name; the module is called ``(batch[inputs[0]],
        batch[inputs[1]], train=train) -> [B, D_m]``.
      inputs: the batch keys of the input and its mask.
      args: positional arguments of the encoder's constructor.
      kwargs: its keyword arguments, ``((field, value), ...)``.
      scope: the encoder module's name ("" = ``enc_<feature>``).
      flat: create the encoder's sub-modules directly in the model's scope
        (:func:`mmer_jax.models.layers.in_scope_of`).
    """

    feature: str
    encoder: str
    inputs: tuple[str, str]
    args: tuple = ()
    kwargs: tuple = ()
    scope: str = ""
    flat: bool = False


@dataclasses.dataclass(frozen=True)
class Head:
    """The classification head: ``HEADS[name](num_classes, **kwargs)``, ``(fused, *, train) ->
    logits [B, C]``, named ``scope`` (or, ``flat``, its layers in the model's scope)."""

    name: str = "mlp"
    kwargs: tuple = ()
    scope: str = "head"
    flat: bool = False


def fusion_layer(name: str, options: tuple, order: tuple[str, ...]) -> nn.Module:
    """The registered vector fusion ``name`` with its ``options`` (``((field, value), ...)``)
    over the modalities in ``order``, named ``fusion``.

    Raises:
      UnknownName: ``name`` is no vector fusion.
    """
    return FUSIONS[name](**dict(options), order=tuple(order), name="fusion")


class EncodersFusionHead(nn.Module):
    """Batch -> (logits [B, C], aux): each branch's encoder, the fusion over their features in
    branch order, the head.

    Attributes:
      branches: one per modality, in the system's (config's) order.
      fusion: a ``FUSIONS`` name; ``fusion_options`` its fields as ``((field, value), ...)``.
      num_classes: C.
      head: the head (:class:`Head`).
      features_key: "" returns the features dict ``{feature: [B, D_m]}`` as the aux; else
        ``{features_key: that dict}`` (the quickstart's ``{"features": ...}``).
    """

    branches: tuple[Branch, ...]
    fusion: str
    num_classes: int
    head: Head = Head()
    fusion_options: tuple = ()
    features_key: str = ""

    @property
    def order(self) -> tuple[str, ...]:
        """The modality order the fusion sees: the branches' features."""
        return tuple(b.feature for b in self.branches)

    @nn.compact
    def __call__(self, batch: dict, *, train: bool) -> tuple[jnp.ndarray, Any]:
        feats = {}
        for b in self.branches:
            kwargs = dict(b.kwargs)
            enc = ENCODERS[b.encoder](*b.args, **kwargs, name=b.scope or f"enc_{b.feature}")
            if b.flat:
                enc = in_scope_of(self, enc)
            feats[b.feature] = enc(batch[b.inputs[0]], batch[b.inputs[1]], train=train)
        fused = fusion_layer(self.fusion, self.fusion_options, self.order)(feats, train=train)
        head = HEADS[self.head.name](self.num_classes, **dict(self.head.kwargs),
                                     name=self.head.scope)
        if self.head.flat:
            head = in_scope_of(self, head)
        logits = head(fused, train=train)
        return logits, ({self.features_key: feats} if self.features_key else feats)


class FusionOnly(nn.Module):
    """A registered fusion on given features (optionally with a linear head): the fusion
    ablation's cost count and the fusion tests. Returns ``(fused or logits, {})``.

    Attributes:
      fusion: a ``FUSIONS`` name; ``options`` its fields as ``((field, value), ...)``.
      order: the modality order (() = sorted names).
      num_classes: 0: no head (the fused vector is returned); else a Dense ``head``.
    """

    fusion: str
    order: tuple[str, ...] = ()
    options: tuple = ()
    num_classes: int = 0

    @nn.compact
    def __call__(self, feats: dict, *, train: bool, masks: dict | None = None):
        h = fusion_layer(self.fusion, self.options, self.order)(feats, train=train, masks=masks)
        if self.num_classes:
            h = nn.Dense(self.num_classes, name="head")(h)
        return h, {}
