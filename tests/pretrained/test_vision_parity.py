"""torchvision ResNet-18/34/50 and timm Inception-ResNet-v2 against their reference
implementations: the reference model (BatchNorm affine parameters and running statistics
randomised, so the BatchNorm mapping is exercised) saved as safetensors or with ``torch.save``,
imported through ``mmer encoders import``'s code path, and every hidden state compared with the
reference module's output captured by a forward hook (NCHW -> NHWC); one gradient too.

Tolerance: float32 rounding differs between PyTorch's (oneDNN) and XLA's convolutions (other
summation orders over up to 3 x 3 x 512 terms), and the difference accumulates through 16-50
layers and grows with the activations, which reach a few hundred in ResNet-50's last stage. So
each state is compared within ``RTOL`` of its own largest magnitude (and never tighter than
``RTOL`` absolute): ``|ours - ref| <= 1e-4 * max(1, max |ref|)``. Measured on this machine:
at most 4e-6 of the state's magnitude (ResNet-50 layer4: 3.5e-3 at a peak of 890).

The inputs (shapes and seeds) are fixed: a gradient compared at a ReLU whose pre-activation is
within rounding of 0 legitimately differs (the two sides route it differently), so a new input
must be checked for that before it replaces one here.

The Inception-ResNet-v2 forward and gradient parity (``slow``: ~40 s here, 15-25 s of it the
XLA compile of the 55M-parameter network) and ResNet-34 run with ``-m slow``; the default run
imports timm's state dict into the architecture without running it.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.errors import CheckpointError
from mmer_jax.weights.convert import CONVERTERS, Checkpoint
from mmer_jax.weights.mapping import TensorSource, flatten
from tests.pretrained.reference import import_dir, max_abs_diff

torch = pytest.importorskip("torch", reason="reference implementations: pip install -e .[ref]")
torchvision = pytest.importorskip("torchvision", reason="pip install -e .[ref]")

# torchvision's modules whose outputs are our hidden states, in order.
RESNET_TAPS = ("maxpool", "layer1", "layer2", "layer3", "layer4")
IRV2_TAPS = ("maxpool_5a", "mixed_5b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "block8",
             "conv2d_7b")
RTOL = 1e-4  # of each state's largest magnitude (module docstring)
GRAD_RTOL = 1e-4  # of the gradient's largest entry


def _randomise_batch_norm(model, seed: int, image_size: int) -> None:
    """Running statistics measured on a random batch (as training leaves them, so the states
    have realistic scales), then every BatchNorm's affine parameters and statistics perturbed
    per channel, so that no tensor's mapping goes untested."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, that batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 3, image_size, image_size, generator=g))
        for m in norms:
            n = m.num_features
            m.momentum = 0.1
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(0.1 * torch.randn(n, generator=g))
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(n, generator=g))
            m.running_var.mul_(0.7 + 0.6 * torch.rand(n, generator=g))
    model.eval()


def _save(model, path, fmt: str) -> None:
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, str(path))


def _reference(model, taps, x_nhwc: np.ndarray, first_conv: str):
    """(hidden states NHWC, readout, d sum(readout * last state) / d first conv weight as HWIO)
    of the reference, in eval mode; ``readout`` a fixed random tensor like the last state."""
    captured = {}
    handles = [model.get_submodule(t).register_forward_hook(
        lambda mod, inp, out, t=t: captured.__setitem__(t, out)) for t in taps]
    try:
        model.zero_grad()
        model(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy()))
    finally:
        for h in handles:
            h.remove()
    states = [captured[t].detach().numpy().transpose(0, 2, 3, 1) for t in taps]
    readout = np.random.default_rng(1).standard_normal(states[-1].shape).astype(np.float32)
    (captured[taps[-1]] * torch.from_numpy(readout.transpose(0, 3, 1, 2).copy())).sum().backward()
    grad = model.get_submodule(first_conv).weight.grad.numpy().transpose(2, 3, 1, 0)
    return states, readout, grad


def _ours(imported, x: np.ndarray, readout: np.ndarray, first: tuple[str, ...], **overrides):
    """(hidden states, the same gradient) of the imported encoder, jitted."""
    module = imported.module(**overrides)
    variables = jax.tree.map(jnp.asarray, imported.variables)

    ignored = jnp.zeros(x.shape[:2], bool)  # a mask is accepted and has no effect

    def loss(params):
        out = module.apply({**variables, "params": params}, jnp.asarray(x), ignored)
        assert out.mask is None
        return jnp.sum(out.hidden_states[-1] * readout), out.hidden_states

    (_, states), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    for k in first:
        grads = grads[k]
    return [np.asarray(s) for s in states], np.asarray(grads)


def _parity(imported, model, taps, x, first_conv, first_path, **overrides):
    """Every hidden state within ATOL and the first convolution's gradient within GRAD_RTOL
    (of its largest entry); prints the figures (``pytest -s``)."""
    ref_states, readout, ref_grad = _reference(model, taps, x, first_conv)
    t0 = time.perf_counter()
    states, grad = _ours(imported, x, readout, first_path, **overrides)
    seconds = time.perf_counter() - t0
    diffs = _assert_close(states, ref_states)
    grad_err = max_abs_diff(grad, ref_grad) / float(np.abs(ref_grad).max())
    assert grad_err <= GRAD_RTOL, f"gradient relative difference {grad_err:.2e}"
    peaks = [f"{np.abs(r).max():.1f}" for r in ref_states]
    print(f"\n{imported.record['source']['files'][0]['name']}: max abs diff per state "
          f"{[f'{d:.1e}' for d in diffs]}, state max {peaks}, grad rel {grad_err:.1e}, "
          f"jax compile+run {seconds:.1f}s")
    return states, grad


def _assert_close(ours, ref) -> list[float]:
    """Every state within RTOL of max(1, its largest magnitude); the max abs differences."""
    assert len(ours) == len(ref), f"{len(ours)} hidden states, reference has {len(ref)}"
    diffs = [max_abs_diff(o, r) for o, r in zip(ours, ref, strict=True)]
    bounds = [RTOL * max(1.0, float(np.abs(r).max())) for r in ref]
    assert all(d <= b for d, b in zip(diffs, bounds, strict=True)), (
        f"max abs difference per hidden state {diffs}, bounds {bounds}")
    return diffs


def _resnet(depth: int, seed: int = 0):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    _randomise_batch_norm(model, seed, 64)
    return model


@pytest.mark.parametrize("depth,fmt,size,remat", [
    (18, "safetensors", (64, 64), False),
    (50, "torch", (64, 64), True),
    pytest.param(34, "torch", (40, 56), False, marks=pytest.mark.slow),
], ids=["resnet18-safetensors", "resnet50-torch_save-remat", "resnet34-torch_save-40x56"])
def test_torchvision_resnet_parity(depth, fmt, size, remat, tmp_path):
    model = _resnet(depth)
    path = tmp_path / f"resnet{depth}.{'safetensors' if fmt == 'safetensors' else 'pth'}"
    _save(model, path, fmt)
    imported = import_dir("torchvision", path, tmp_path, arch=f"resnet{depth}")
    assert imported.record["architecture"] == "resnet"
    assert imported.config.depth == depth
    ignored = imported.record["ignored_tensors"]
    assert {"fc.weight", "fc.bias"} <= set(ignored)
    assert all(n.startswith("fc.") or n.endswith("num_batches_tracked") for n in ignored)
    x = np.random.default_rng(0).standard_normal((2,) + size + (3,)).astype(np.float32)
    states, _ = _parity(imported, model, RESNET_TAPS, x, "conv1", ("conv1", "kernel"),
                        remat=remat)
    width = 4 if depth == 50 else 1
    h, w = size
    assert [s.shape for s in states] == [
        (2, -(-h // 4), -(-w // 4), 64), (2, -(-h // 4), -(-w // 4), 64 * width),
        (2, -(-h // 8), -(-w // 8), 128 * width), (2, -(-h // 16), -(-w // 16), 256 * width),
        (2, -(-h // 32), -(-w // 32), 512 * width)]


def test_resnet_train_mode_matches_torch_batch_statistics(tmp_path):
    """train=True: normalised with the batch's statistics; running mean and unbiased variance
    updated with momentum 0.1, as torch's BatchNorm2d in train mode."""
    model = _resnet(18, seed=5)
    path = tmp_path / "r18.pth"
    _save(model, path, "torch")
    imported = import_dir("torchvision", path, tmp_path, arch="resnet18")
    x = np.random.default_rng(4).standard_normal((2, 64, 64, 3)).astype(np.float32)
    model.train()
    captured = {}
    hooks = [model.get_submodule(t).register_forward_hook(
        lambda m, i, o, t=t: captured.__setitem__(t, o.detach().numpy().transpose(0, 2, 3, 1)))
        for t in RESNET_TAPS]
    with torch.no_grad():
        model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    for h in hooks:
        h.remove()
    out, updated = jax.jit(lambda v, x: imported.module().apply(
        v, x, train=True, mutable=["batch_stats"]))(imported.variables, x)
    _assert_close([np.asarray(s) for s in out.hidden_states], [captured[t] for t in RESNET_TAPS])
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    expected = CONVERTERS["torchvision:resnet18"](Checkpoint(
        "torchvision", str(path), "resnet18", TensorSource(state, "after"), None, []))
    want = flatten(expected.variables["batch_stats"])
    got = flatten(jax.device_get(updated["batch_stats"]))
    assert set(want) == set(got)
    worst = max(max_abs_diff(got[k], want[k].value) for k in want)
    assert worst <= 1e-5, f"running statistics differ by {worst}"


def _timm_irv2(seed: int = 0):
    timm = pytest.importorskip("timm", reason="pip install -e .[ref]")
    torch.manual_seed(seed)
    return timm.create_model("inception_resnet_v2", pretrained=False)


def test_timm_inception_resnet_v2_state_dict_fills_the_architecture(tmp_path):
    """Every variable of the module filled from timm's tensors with the right shape, only the
    classifier and the BatchNorm counters left out (no forward pass: the default run's check)."""
    from mmer_jax.weights import importer

    path = tmp_path / "irv2.pth"
    _save(_timm_irv2(), path, "torch")
    ckpt = importer.read_checkpoint("timm", path, "inception_resnet_v2")
    variables = importer.variables_of(importer.convert(ckpt), str(path))
    assert sorted(variables) == ["batch_stats", "params"]
    n = sum(v.size for v in flatten(variables["params"]).values())
    assert n == 54_306_464  # timm's parameters less the classifier
    unused = ckpt.tensors.unused()
    assert {"classif.weight", "classif.bias"} <= set(unused)
    assert all(u.startswith("classif.") or u.endswith("num_batches_tracked") for u in unused)


@pytest.mark.slow
def test_timm_inception_resnet_v2_parity(tmp_path):
    model = _timm_irv2()
    _randomise_batch_norm(model, 0, 75)
    path = tmp_path / "irv2.safetensors"
    _save(model, path, "safetensors")
    imported = import_dir("timm", path, tmp_path, arch="inception_resnet_v2")
    assert imported.record["architecture"] == "inception_resnet_v2"
    assert set(imported.record["ignored_tensors"]) - {"classif.weight", "classif.bias"} == {
        n for n in imported.record["ignored_tensors"] if n.endswith("num_batches_tracked")}
    # The Inception normalisation puts RGB in [-1, 1]; any unit-scale input exercises the same.
    x = np.random.default_rng(0).standard_normal((2, 75, 75, 3)).astype(np.float32)
    states, _ = _parity(imported, model, IRV2_TAPS, x, "conv2d_1a.conv",
                        ("conv2d_1a", "conv", "kernel"))
    assert [s.shape[1:] for s in states] == [(7, 7, 192), (7, 7, 320), (7, 7, 320),
                                             (3, 3, 1088), (3, 3, 1088), (1, 1, 2080),
                                             (1, 1, 2080), (1, 1, 1536)]


def test_configs_and_input_checks():
    from mmer_jax.models.pretrained.vision import (
        TimmInceptionResNetV2,
        TimmInceptionResNetV2Config,
        TorchvisionResNet,
        TorchvisionResNetConfig,
    )

    with pytest.raises(ValueError, match="at least 75 x 75"):
        jax.eval_shape(lambda: TimmInceptionResNetV2().init(
            jax.random.PRNGKey(0), jnp.zeros((1, 74, 80, 3))))
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        jax.eval_shape(lambda: TorchvisionResNet(TorchvisionResNetConfig()).init(
            jax.random.PRNGKey(0), jnp.zeros((1, 3, 64, 64))))
    with pytest.raises(ValueError, match="depth=101"):
        TorchvisionResNetConfig(depth=101)
    with pytest.raises(ValueError, match="dtype='float64'"):
        TimmInceptionResNetV2Config(dtype="float64")
    module = TorchvisionResNet(TorchvisionResNetConfig(depth=18, dtype="bfloat16"))
    out, variables = jax.eval_shape(lambda: module.init_with_output(
        jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))
    assert all(s.dtype == jnp.bfloat16 for s in out.hidden_states)
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables))


def test_import_errors_name_the_file_and_the_tensor(tmp_path):
    model = _resnet(18)
    path = tmp_path / "resnet18.safetensors"
    _save(model, path, "safetensors")
    with pytest.raises(CheckpointError, match=rf"{path}: no tensor 'layer1\.2\.conv1\.weight'"):
        import_dir("torchvision", path, tmp_path, arch="resnet34")
    with pytest.raises(CheckpointError,
                       match=rf"{path}: tensor 'layer1\.0\.conv1\.weight' has shape "
                             r"\[64, 64, 3, 3\]; the architecture's config implies "
                             r"\[64, 64, 1, 1\]"):
        import_dir("torchvision", path, tmp_path, arch="resnet50")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["layer2.0.conv1.weight"] = torch.zeros(128, 32, 3, 3)
    bad = tmp_path / "bad.pth"
    torch.save(state, str(bad))
    with pytest.raises(CheckpointError, match=rf"{bad}: tensor 'layer2\.0\.conv1\.weight' has "
                                              r"shape \[128, 32, 3, 3\]"):
        import_dir("torchvision", bad, tmp_path, arch="resnet18")
    assert not (tmp_path / "imported").exists()
