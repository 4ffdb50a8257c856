"""ImageNet face-branch backbones in Flax, laid out as torchvision's ResNets and timm's
Inception-ResNet-v2 so that their state dicts import tensor for tensor.

- ``resnet``: ResNet-18/34 (basic blocks) and ResNet-50 (bottleneck blocks, "v1.5": the stride
  sits on the 3 x 3 convolution, as torchvision places it), He et al. 2016, "Deep Residual
  Learning for Image Recognition". Parameter paths mirror torchvision's module names with "."
  between a stage and its block index replaced by "_": ``conv1``, ``bn1``, ``layer1_0/conv1``,
  ``layer2_0/downsample_0`` (the projection convolution), ``layer2_0/downsample_1`` (its norm).
- ``inception_resnet_v2``: Szegedy et al. 2017, "Inception-v4, Inception-ResNet and the Impact of
  Residual Connections on Learning", in the layout timm ported from TF-slim: a stem of plain
  convolutions and max-pools, Mixed_5b, 10 x Block35 (scale 0.17), Mixed_6a, 20 x Block17
  (0.10), Mixed_7a, 9 x Block8 (0.20), one Block8 with scale 1 and no ReLU, and a 1 x 1
  convolution to 1536 channels. Every convolution but the residual 1 x 1 "up" projections
  (which have a bias and no norm) is conv -> BatchNorm (eps 1e-3) -> ReLU. Parameter paths:
  ``conv2d_1a/conv``, ``conv2d_1a/bn``, ``mixed_5b/branch1_0/conv``, ``repeat_3/conv2d``,
  ``repeat_1_0/...`` (timm's ``repeat_1.0``), ``repeat_2_8/...``, ``block8/...``, ``conv2d_7b``.

Why not the from-scratch modules of ``mmer_jax.models.encoders``: ``encoders.resnet.ResNet`` pads
its convolutions and its max-pool "SAME" (on even sizes (2, 3) around the 7 x 7 stride-2 stem,
(0, 1) around the pool and the stride-2 3 x 3 convolutions, where torchvision pads (3, 3) and
(1, 1), so the windows differ), has no bottleneck block, returns only the last map, has no
dtype or remat, and uses Flax's BatchNorm, which updates the running variance with the biased
batch variance (PyTorch uses the unbiased one). Its basic-block tree would map, but matching
the computation takes five opt-in options threaded through a module whose trees the golden
tests pin, more code than this faithful module. ``encoders.inception_resnet_v2`` is S004's
paper-figure network, not timm's: its stem is Inception-v4's (no Mixed_5b, 384 channels into
the A blocks where timm has 320), its repeats are 5/10/5 where timm's are 10/20/9 plus a final
Block8 without ReLU, and its BatchNorm (momentum 0.99) is masked, so no option set maps timm's
tensors onto it.

Input: images float32 ``[B, H, W, 3]`` (NHWC), already normalised. torchvision's ResNets were
trained on ``(x - IMAGENET_MEAN) / IMAGENET_STD`` of RGB in [0, 1]; timm's Inception-ResNet-v2
(the TF-slim weights) on ``(x - INCEPTION_MEAN) / INCEPTION_STD``, i.e. RGB scaled to [-1, 1]
(``NORMALIZATION`` names each). ``mask`` is accepted and ignored (every pixel is valid).

BatchNorm (:class:`BatchNorm`): ``train=False`` normalises with the running statistics of the
``batch_stats`` collection; ``train=True`` with the batch's statistics (biased variance), and
updates the running mean and the running *unbiased* variance with PyTorch's momentum 0.1 (Flax's
0.9), as ``torch.nn.BatchNorm2d`` does; apply with ``mutable=["batch_stats"]``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.pretrained.blocks import EncoderOutput
from mmer_jax.registry import ARCHITECTURES, Architecture

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB in [0, 1]: torchvision's ResNets
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # timm's Inception-ResNet-v2 (TF-slim weights): [-1, 1]
INCEPTION_STD = (0.5, 0.5, 0.5)
NORMALIZATION = {"resnet": (IMAGENET_MEAN, IMAGENET_STD),
                 "inception_resnet_v2": (INCEPTION_MEAN, INCEPTION_STD)}

# Blocks per stage, and whether the depth uses bottleneck blocks (torchvision's resnetXX()).
RESNET_DEPTHS = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False),
                 50: ((3, 4, 6, 3), True)}
IRV2_MIN_SIZE = 75  # timm's unpadded stem and reductions leave a 1 x 1 map at 75 x 75
_DTYPES = ("float32", "bfloat16", "float16")


def _check_dtype(dtype: str) -> None:
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} must be one of {', '.join(_DTYPES)}")


def _check_image(x: jnp.ndarray, min_size: int, name: str) -> None:
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{name} takes images [B, H, W, 3] (NHWC, RGB); got shape {x.shape}")
    if min(x.shape[1:3]) < min_size:
        raise ValueError(f"{name} needs images of at least {min_size} x {min_size}; got "
                         f"{x.shape[1]} x {x.shape[2]}")


def _pad(kernel: Sequence[int], pad: Optional[Sequence[int]] = None) -> tuple:
    """PyTorch's symmetric zero padding: ``pad`` per axis, or ``kernel // 2`` when None."""
    pad = [k // 2 for k in kernel] if pad is None else pad
    return tuple((p, p) for p in pad)


class BatchNorm(nn.Module):
    """``torch.nn.BatchNorm2d`` over the last axis of ``[B, H, W, C]``.

    Variables: params ``scale``, ``bias`` [C]; batch_stats ``mean``, ``var`` [C] (PyTorch's
    ``weight``, ``bias``, ``running_mean``, ``running_var``). Statistics and the affine map are
    computed in float32 and the result cast to ``dtype``.

    Attributes:
      epsilon: added to the variance (1e-5 torchvision, 1e-3 timm's Inception-ResNet-v2).
      momentum: PyTorch's convention: ``running = (1 - momentum) * running + momentum * batch``.
      dtype: output dtype.
    """

    epsilon: float = 1e-5
    momentum: float = 0.1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        """x [B, H, W, C] -> [B, H, W, C].

        Raises:
          ValueError: ``train`` with one value per channel (PyTorch refuses it too).
        """
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
        xf = x.astype(jnp.float32)
        if train:
            n = x.size // c
            if n < 2:
                raise ValueError(f"BatchNorm in training needs more than one value per channel; "
                                 f"got input {x.shape}")
            mean = xf.mean((0, 1, 2))
            var = jnp.square(xf - mean).mean((0, 1, 2))  # biased: what normalises
            if not self.is_initializing():
                m = self.momentum
                ra_mean.value = (1 - m) * ra_mean.value + m * mean
                ra_var.value = (1 - m) * ra_var.value + m * var * (n / (n - 1))
        else:
            mean, var = ra_mean.value, ra_var.value
        y = (xf - mean) / jnp.sqrt(var + self.epsilon) * scale + bias
        return y.astype(self.dtype)


# ============================================================================ torchvision ResNet
@dataclasses.dataclass(frozen=True)
class TorchvisionResNetConfig:
    """A torchvision ResNet's shape.

    Attributes:
      depth: 18, 34 (basic blocks) or 50 (bottleneck blocks).
      dtype: computation dtype, "float32", "bfloat16" or "float16" (parameters stay float32).
      remat: recompute each block's activations in the backward pass.

    Raises:
      ValueError: an unknown depth or dtype.
    """

    depth: int = 18
    dtype: str = "float32"
    remat: bool = False

    def __post_init__(self):
        if self.depth not in RESNET_DEPTHS:
            raise ValueError(f"depth={self.depth!r} must be one of {sorted(RESNET_DEPTHS)}")
        _check_dtype(self.dtype)


class _ResNetBlock(nn.Module):
    """Basic (two 3 x 3) or bottleneck (1 x 1, 3 x 3 with the stride, 1 x 1 to 4 x planes)
    block; a projection (``downsample_0`` conv, ``downsample_1`` norm) where the shape changes."""

    planes: int
    stride: int
    bottleneck: bool
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        def conv(y, feats, k, stride, name):
            return nn.Conv(feats, (k, k), stride, padding=_pad((k, k)), use_bias=False,
                           dtype=self.dtype, name=name)(y)

        def bn(y, name):
            return BatchNorm(1e-5, dtype=self.dtype, name=name)(y, train)

        s, p = self.stride, self.planes
        if self.bottleneck:
            out_ch = 4 * p
            y = nn.relu(bn(conv(x, p, 1, 1, "conv1"), "bn1"))
            y = nn.relu(bn(conv(y, p, 3, s, "conv2"), "bn2"))
            y = bn(conv(y, out_ch, 1, 1, "conv3"), "bn3")
        else:
            out_ch = p
            y = nn.relu(bn(conv(x, p, 3, s, "conv1"), "bn1"))
            y = bn(conv(y, p, 3, 1, "conv2"), "bn2")
        if s != 1 or x.shape[-1] != out_ch:
            x = bn(conv(x, out_ch, 1, s, "downsample_0"), "downsample_1")
        return nn.relu(x + y)


class TorchvisionResNet(nn.Module):
    """Images [B, H, W, 3] -> :class:`EncoderOutput` with 5 hidden states ``[B, H', W', C]``:
    the stem's output after its max-pool (torchvision's ``maxpool``, 64 channels at H/4), then
    the outputs of ``layer1`` .. ``layer4`` (H/4, H/8, H/16, H/32; 64, 128, 256, 512 channels,
    x4 for ResNet-50). The last is what torchvision's ``avgpool`` averages.

    Raises:
      ValueError: at trace time, an input not [B, H, W, 3].
    """

    cfg: TorchvisionResNetConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: Optional[jnp.ndarray] = None, *,
                 train: bool = False) -> EncoderOutput:
        del mask
        c = self.cfg
        _check_image(x, 1, f"resnet{c.depth}")
        dtype = jnp.dtype(c.dtype)
        stages, bottleneck = RESNET_DEPTHS[c.depth]
        y = nn.Conv(64, (7, 7), 2, padding=_pad((7, 7)), use_bias=False, dtype=dtype,
                    name="conv1")(x.astype(dtype))
        y = nn.relu(BatchNorm(1e-5, dtype=dtype, name="bn1")(y, train))
        y = nn.max_pool(y, (3, 3), (2, 2), padding=((1, 1), (1, 1)))  # [B, H/4, W/4, 64]
        states = [y]
        Block = nn.remat(_ResNetBlock, static_argnums=(2,)) if c.remat else _ResNetBlock
        for i, n_blocks in enumerate(stages):
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                y = Block(64 * 2**i, stride, bottleneck, dtype, name=f"layer{i + 1}_{j}")(y, train)
            states.append(y)  # [B, H/2^(i+2), W/2^(i+2), C_i]
        return EncoderOutput(tuple(states), None)


def _resnet_dummy(cfg: TorchvisionResNetConfig, batch: int):
    return jnp.zeros((batch, 32, 32, 3), jnp.float32), None


ARCHITECTURES.register("resnet", Architecture(
    "resnet", TorchvisionResNetConfig, TorchvisionResNet, "image", _resnet_dummy))


# ===================================================================== timm Inception-ResNet-v2
@dataclasses.dataclass(frozen=True)
class TimmInceptionResNetV2Config:
    """timm's ``inception_resnet_v2`` (its sizes are fixed; only the computation is chosen).

    Attributes:
      dtype: computation dtype, "float32", "bfloat16" or "float16" (parameters stay float32).
      remat: recompute each residual block's activations in the backward pass.

    Raises:
      ValueError: an unknown dtype.
    """

    dtype: str = "float32"
    remat: bool = False

    def __post_init__(self):
        _check_dtype(self.dtype)


class _ConvBN(nn.Module):
    """timm's ``ConvNormAct``: ``conv`` (no bias) -> ``bn`` (eps 1e-3) -> ReLU. ``padding``:
    symmetric zeros per axis (timm pads 0 unless a layer says otherwise)."""

    features: int
    kernel: tuple[int, int]
    strides: int = 1
    padding: tuple[int, int] = (0, 0)
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        x = nn.Conv(self.features, self.kernel, self.strides, padding=_pad(self.kernel,
                    self.padding), use_bias=False, dtype=self.dtype, name="conv")(x)
        return nn.relu(BatchNorm(1e-3, dtype=self.dtype, name="bn")(x, train))


def _max_pool(x: jnp.ndarray) -> jnp.ndarray:
    return nn.max_pool(x, (3, 3), (2, 2), padding="VALID")


def _branches(spec: tuple, x: jnp.ndarray, train: bool, dtype: jnp.dtype) -> jnp.ndarray:
    """Parallel branches concatenated on channels, built in the calling module's scope (so the
    layers sit directly under it, as in timm's state dict: ``mixed_5b/branch1_0``).

    ``spec``: one entry per branch, each a tuple of layers: ``(features, (kh, kw), stride,
    same)`` (a :class:`_ConvBN`; ``same`` pads k // 2, else 0), ``"maxpool"`` (3 x 3, stride 2,
    unpadded) or ``"avgpool"`` (3 x 3, stride 1, pad 1 not counted in the mean). Branch i's
    layer j is named ``branch{i}`` when the branch is that one layer, else ``branch{i}_{j}``
    (timm's ``nn.Sequential`` index).
    """
    outs = []
    for i, layers in enumerate(spec):
        y = x
        for j, layer in enumerate(layers):
            if layer == "maxpool":
                y = _max_pool(y)
            elif layer == "avgpool":
                y = nn.avg_pool(y, (3, 3), (1, 1), padding=((1, 1), (1, 1)),
                                count_include_pad=False)
            else:
                feats, k, s, same = layer
                name = f"branch{i}" if len(layers) == 1 else f"branch{i}_{j}"
                pad = (k[0] // 2, k[1] // 2) if same else (0, 0)
                y = _ConvBN(feats, k, s, pad, dtype, name=name)(y, train)
        outs.append(y)
    return jnp.concatenate(outs, -1)


def _c(feats: int, kh: int, kw: Optional[int] = None, stride: int = 1, same: bool = True):
    return (feats, (kh, kh if kw is None else kw), stride, same)


# Branch layouts (timm's channel counts; Szegedy et al. 2017 Figs. 16, 7, 17, 18, 19).
MIXED_5B = ((_c(96, 1),), (_c(48, 1), _c(64, 5)), (_c(64, 1), _c(96, 3), _c(96, 3)),
            ("avgpool", _c(64, 1)))  # 192 -> 320 channels
BLOCK35 = ((_c(32, 1),), (_c(32, 1), _c(32, 3)), (_c(32, 1), _c(48, 3), _c(64, 3)))
MIXED_6A = ((_c(384, 3, stride=2, same=False),),
            (_c(256, 1), _c(256, 3), _c(384, 3, stride=2, same=False)),
            ("maxpool",))  # 320 -> 1088
BLOCK17 = ((_c(192, 1),), (_c(128, 1), _c(160, 1, 7), _c(192, 7, 1)))
MIXED_7A = ((_c(256, 1), _c(384, 3, stride=2, same=False)),
            (_c(256, 1), _c(288, 3, stride=2, same=False)),
            (_c(256, 1), _c(288, 3), _c(320, 3, stride=2, same=False)),
            ("maxpool",))  # 1088 -> 2080
BLOCK8 = ((_c(192, 1),), (_c(192, 1), _c(224, 1, 3), _c(256, 3, 1)))
# The three stages: (Mixed name, its spec, block name prefix, block spec, repeats, residual
# scale); the blocks of stage k are ``{prefix}_{i}``, timm's ``{prefix}.{i}``.
STAGES = (("mixed_5b", MIXED_5B, "repeat", BLOCK35, 10, 0.17),
          ("mixed_6a", MIXED_6A, "repeat_1", BLOCK17, 20, 0.10),
          ("mixed_7a", MIXED_7A, "repeat_2", BLOCK8, 9, 0.20))


class _Mixed(nn.Module):
    """Mixed_5b / 6a / 7a: the branches of ``spec``, concatenated."""

    spec: tuple
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        return _branches(self.spec, x, train, self.dtype)


class _Residual(nn.Module):
    """Block35 / 17 / 8: branches -> ``conv2d`` (1 x 1 with bias, back to the input's channels)
    -> ``x + scale * up`` -> ReLU (none in the last Block8)."""

    spec: tuple
    scale: float
    relu: bool
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        y = _branches(self.spec, x, train, self.dtype)
        up = nn.Conv(x.shape[-1], (1, 1), dtype=self.dtype, name="conv2d")(y)
        y = x + self.scale * up
        return nn.relu(y) if self.relu else y


class TimmInceptionResNetV2(nn.Module):
    """Images [B, H, W, 3] (H, W >= 75) -> :class:`EncoderOutput` with 8 hidden states
    ``[B, H', W', C]``, the outputs of timm's modules (at 299 x 299 input; 75 x 75 gives 7, 7, 7,
    3, 3, 1, 1, 1):

    0. ``maxpool_5a``, the stem's end: 192 channels, 35 x 35;
    1. ``mixed_5b``: 320, 35 x 35;  2. ``repeat`` (10 x Block35): 320, 35 x 35;
    3. ``mixed_6a``: 1088, 17 x 17;  4. ``repeat_1`` (20 x Block17): 1088, 17 x 17;
    5. ``mixed_7a``: 2080, 8 x 8;  6. ``block8`` (after ``repeat_2``'s 9 Block8): 2080, 8 x 8;
    7. ``conv2d_7b``: 1536, 8 x 8, what timm's ``forward_features`` returns and its head
       averages.

    Raises:
      ValueError: at trace time, an input not [B, H, W, 3] or smaller than 75 x 75.
    """

    cfg: TimmInceptionResNetV2Config = TimmInceptionResNetV2Config()

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: Optional[jnp.ndarray] = None, *,
                 train: bool = False) -> EncoderOutput:
        del mask
        c = self.cfg
        _check_image(x, IRV2_MIN_SIZE, "inception_resnet_v2")
        dtype = jnp.dtype(c.dtype)

        def conv(y, feats, k, stride, pad, name):
            return _ConvBN(feats, (k, k), stride, (pad, pad), dtype, name=name)(y, train)

        y = conv(x.astype(dtype), 32, 3, 2, 0, "conv2d_1a")
        y = conv(y, 32, 3, 1, 0, "conv2d_2a")
        y = _max_pool(conv(y, 64, 3, 1, 1, "conv2d_2b"))  # maxpool_3a
        y = conv(y, 80, 1, 1, 0, "conv2d_3b")
        y = _max_pool(conv(y, 192, 3, 1, 0, "conv2d_4a"))  # maxpool_5a
        states = [y]  # [B, 35, 35, 192] at 299
        Block = nn.remat(_Residual, static_argnums=(2,)) if c.remat else _Residual
        for mixed, mixed_spec, prefix, spec, repeats, scale in STAGES:
            y = _Mixed(mixed_spec, dtype, name=mixed)(y, train)
            states.append(y)
            for i in range(repeats):
                y = Block(spec, scale, True, dtype, name=f"{prefix}_{i}")(y, train)
            if prefix == "repeat_2":
                y = Block(BLOCK8, 1.0, False, dtype, name="block8")(y, train)
            states.append(y)
        states.append(conv(y, 1536, 1, 1, 0, "conv2d_7b"))  # [B, 8, 8, 1536] at 299
        return EncoderOutput(tuple(states), None)


def _irv2_dummy(cfg: TimmInceptionResNetV2Config, batch: int):
    return jnp.zeros((batch, IRV2_MIN_SIZE, IRV2_MIN_SIZE, 3), jnp.float32), None


ARCHITECTURES.register("inception_resnet_v2", Architecture(
    "inception_resnet_v2", TimmInceptionResNetV2Config, TimmInceptionResNetV2, "image",
    _irv2_dummy))
