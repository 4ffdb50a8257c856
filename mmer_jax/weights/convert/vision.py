"""ImageNet backbones from state dicts: torchvision's ``resnet18/34/50().state_dict()`` and timm's
``inception_resnet_v2`` (``timm.create_model(...).state_dict()``), saved with
``safetensors.torch.save_file`` or ``torch.save``, onto the ``resnet`` and ``inception_resnet_v2``
architectures of :mod:`mmer_jax.models.pretrained.vision`.

Every convolution weight ``[out, in, kh, kw]`` is checked against the shape the architecture
implies and transposed to Flax's ``[kh, kw, in, out]``; every BatchNorm becomes params
``scale`` / ``bias`` (``weight`` / ``bias``) and batch_stats ``mean`` / ``var``
(``running_mean`` / ``running_var``). Left unused, and so listed as ignored in the import
record: the classifier (torchvision's ``fc``, timm's ``classif``) and the BatchNorm counters
``num_batches_tracked``. A state dict saved from a wrapper (``module.`` / ``model.`` before every
name) is read under that prefix.
"""

from __future__ import annotations

from mmer_jax.errors import CheckpointError
from mmer_jax.models.pretrained.vision import (
    BLOCK8,
    RESNET_DEPTHS,
    STAGES,
    TimmInceptionResNetV2Config,
    TorchvisionResNetConfig,
)
from mmer_jax.weights.convert import CONVERTERS, Checkpoint, Converted
from mmer_jax.weights.mapping import TensorSource, batch_norm, conv

# Left out by a backbone import: the classifier and BatchNorm's step counters.
IGNORABLE = (r"(^|\.)fc\.", r"(^|\.)classif\.", r"(^|\.)last_linear\.", r"(^|\.)head\.",
             r"num_batches_tracked$")

# Training scripts save the state dict bare, under DataParallel's "module.", or wrapped in a
# dict ({"state_dict": ...}, {"model": ...}); the torch reader flattens the wrapper with ".".
_PREFIXES = ("", "module.", "model.", "state_dict.", "model_state_dict.", "state_dict.module.",
             "model.module.")


def _source(ckpt: Checkpoint, first: str, what: str) -> TensorSource:
    """The checkpoint's tensors under the prefix where ``first`` is found.

    Raises:
      CheckpointError: ``first`` under none of the prefixes (not a ``what`` state dict).
    """
    src: TensorSource = ckpt.tensors
    for prefix in _PREFIXES:
        if src.has(prefix + first):
            return src.with_prefix(prefix)
    raise CheckpointError(f"{src.origin}: no tensor {first!r} (also looked under "
                          f"{', '.join(p for p in _PREFIXES if p)}): not a {what} state dict")


class _Variables:
    """Collects converted tensors into the ``params`` and ``batch_stats`` trees."""

    def __init__(self, src: TensorSource):
        self.src = src
        self.params: dict = {}
        self.stats: dict = {}

    @staticmethod
    def _put(tree: dict, path: tuple[str, ...], value) -> None:
        for k in path[:-1]:
            tree = tree.setdefault(k, {})
        tree[path[-1]] = value

    def conv(self, name: str, path: tuple[str, ...], shape: tuple[int, ...],
             bias: bool = False) -> None:
        """Torch conv ``name`` (weight ``shape`` = [out, in, kh, kw]) -> params at ``path``."""
        self._put(self.params, path, conv(self.src, name, shape, bias=bias))

    def bn(self, name: str, path: tuple[str, ...], dim: int) -> None:
        """Torch BatchNorm ``name`` -> params and batch_stats at ``path``."""
        params, stats = batch_norm(self.src, name, dim)
        self._put(self.params, path, params)
        self._put(self.stats, path, stats)

    def conv_bn(self, name: str, path: tuple[str, ...], c_in: int, c_out: int,
                kernel: tuple[int, int]) -> None:
        """timm's ``ConvNormAct`` ``name`` (``.conv``, ``.bn``) -> ``path/conv``, ``path/bn``."""
        self.conv(f"{name}.conv", path + ("conv",), (c_out, c_in) + tuple(kernel))
        self.bn(f"{name}.bn", path + ("bn",), c_out)

    def variables(self) -> dict:
        return {"params": self.params, "batch_stats": self.stats}


# ============================================================================ torchvision ResNet
def _resnet(ckpt: Checkpoint, depth: int) -> Converted:
    """torchvision ``resnet{depth}`` state dict -> ``resnet``.

    Raises:
      CheckpointError: a tensor missing or of another shape (e.g. ``--arch`` names another
        depth than the file holds); the message names the file and the tensor.
    """
    cfg = TorchvisionResNetConfig(depth=depth)
    v = _Variables(_source(ckpt, "conv1.weight", f"torchvision resnet{depth}"))
    stages, bottleneck = RESNET_DEPTHS[depth]
    v.conv("conv1", ("conv1",), (64, 3, 7, 7))
    v.bn("bn1", ("bn1",), 64)
    c_in = 64
    for i, n_blocks in enumerate(stages):
        planes = 64 * 2**i
        c_out = 4 * planes if bottleneck else planes
        for j in range(n_blocks):
            name, path = f"layer{i + 1}.{j}", f"layer{i + 1}_{j}"
            stride = 2 if (i > 0 and j == 0) else 1
            if bottleneck:
                convs = ((planes, c_in, 1), (planes, planes, 3), (c_out, planes, 1))
            else:
                convs = ((planes, c_in, 3), (planes, planes, 3))
            for k, (o, i_ch, ks) in enumerate(convs, start=1):
                v.conv(f"{name}.conv{k}", (path, f"conv{k}"), (o, i_ch, ks, ks))
                v.bn(f"{name}.bn{k}", (path, f"bn{k}"), o)
            if stride != 1 or c_in != c_out:
                v.conv(f"{name}.downsample.0", (path, "downsample_0"), (c_out, c_in, 1, 1))
                v.bn(f"{name}.downsample.1", (path, "downsample_1"), c_out)
            c_in = c_out
    return Converted("resnet", cfg, v.variables(), f"resnet{depth}-torchvision",
                     ignorable=IGNORABLE)


@CONVERTERS.register("torchvision:resnet18")
def from_torchvision_resnet18(ckpt: Checkpoint) -> Converted:
    """``torchvision.models.resnet18().state_dict()`` -> ``resnet`` (depth 18)."""
    return _resnet(ckpt, 18)


@CONVERTERS.register("torchvision:resnet34")
def from_torchvision_resnet34(ckpt: Checkpoint) -> Converted:
    """``torchvision.models.resnet34().state_dict()`` -> ``resnet`` (depth 34)."""
    return _resnet(ckpt, 34)


@CONVERTERS.register("torchvision:resnet50")
def from_torchvision_resnet50(ckpt: Checkpoint) -> Converted:
    """``torchvision.models.resnet50().state_dict()`` (v1 or v2 weights: same layout) ->
    ``resnet`` (depth 50)."""
    return _resnet(ckpt, 50)


# ===================================================================== timm Inception-ResNet-v2
def _branches(v: _Variables, name: str, path: tuple[str, ...], spec: tuple, c_in: int) -> int:
    """The branch layers of ``spec`` (the module's own layout table) under timm's ``name``;
    returns the concatenation's channels (a pool-only branch passes ``c_in`` through)."""
    total = 0
    for i, layers in enumerate(spec):
        c = c_in
        for j, layer in enumerate(layers):
            if isinstance(layer, str):  # a pool keeps the channels
                continue
            feats, kernel, _, _ = layer
            suffix = ("", "") if len(layers) == 1 else (f".{j}", f"_{j}")
            v.conv_bn(f"{name}.branch{i}{suffix[0]}", path + (f"branch{i}{suffix[1]}",), c,
                      feats, kernel)
            c = feats
        total += c
    return total


def _residual(v: _Variables, name: str, path: str, spec: tuple, c_in: int) -> None:
    mixed = _branches(v, name, (path,), spec, c_in)
    v.conv(f"{name}.conv2d", (path, "conv2d"), (c_in, mixed, 1, 1), bias=True)


@CONVERTERS.register("timm:inception_resnet_v2")
def from_timm_inception_resnet_v2(ckpt: Checkpoint) -> Converted:
    """``timm.create_model("inception_resnet_v2").state_dict()`` -> ``inception_resnet_v2``.

    Raises:
      CheckpointError: a tensor missing or of another shape; the message names the file and
        the tensor.
    """
    v = _Variables(_source(ckpt, "conv2d_1a.conv.weight", "timm inception_resnet_v2"))
    c = 3
    for name, feats, k in (("conv2d_1a", 32, 3), ("conv2d_2a", 32, 3), ("conv2d_2b", 64, 3),
                           ("conv2d_3b", 80, 1), ("conv2d_4a", 192, 3)):
        v.conv_bn(name, (name,), c, feats, (k, k))
        c = feats
    for mixed, mixed_spec, prefix, spec, repeats, _ in STAGES:
        c = _branches(v, mixed, (mixed,), mixed_spec, c)  # 320, 1088, 2080
        for i in range(repeats):
            _residual(v, f"{prefix}.{i}", f"{prefix}_{i}", spec, c)
    _residual(v, "block8", "block8", BLOCK8, c)
    v.conv_bn("conv2d_7b", ("conv2d_7b",), c, 1536, (1, 1))
    return Converted("inception_resnet_v2", TimmInceptionResNetV2Config(), v.variables(),
                     "inception_resnet_v2-timm", ignorable=IGNORABLE)
