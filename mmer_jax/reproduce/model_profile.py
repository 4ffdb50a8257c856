"""Size and speed of a reproduction's primary model: parameters, FLOPs and latency per example.

S003's point is a small real-time model, so every reproduction report carries these figures,
measured on one test example (one clip, or one dialogue for dialogue models) of the run's corpus,
on this process's CPU. Parameters are freshly initialised: size and cost do not depend on them.
"""

from __future__ import annotations

import jax
import numpy as np


def profile_config(cfg) -> dict:
    """{"variant", "modalities", "params", "flops_per_example", "latency_ms_cpu", "unit"}."""
    from mmer_jax.data.device import make_feature_step
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.models import build_model, profile
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.train.regression import head_size
    from mmer_jax.train.run import primary_variant, variants_of

    data = from_section(DataConfig, cfg.data, "data")
    name = primary_variant(cfg)
    modalities = variants_of(cfg)[name]
    pipeline = make_pipeline(data, list(modalities), cfg.seed, None)
    host = next(iter(pipeline.batches("test", cfg.train.batch_size, train=False)))
    host = {k: np.asarray(v)[:1] for k, v in host.items()}
    batch = make_feature_step(data, "float32")(host)

    def build(model_cfg):
        # A regression run's model has one output: profile that model, not a classifier.
        return build_model(model_cfg, num_classes=head_size(cfg, pipeline.num_classes),
                           vocab_size=pipeline.vocab_size, modalities=modalities)

    model = build(cfg.model)
    # Jitted: an eager init compiles a random-number program per parameter shape.
    variables = jax.jit(lambda rngs, b: model.init(rngs, b, train=False))(
        {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, batch)
    # Shifted depthwise convs (``implementation="shifted"``, S003's image encoder) are
    # elementwise multiply-adds, which the counter skips; the grouped form does the same
    # arithmetic with the same parameters and counts as a conv.
    grouped = _shifted_to_grouped(cfg.model)
    flops_model = model if grouped is None else build(grouped)
    return {
        "variant": name,
        "modalities": list(modalities),
        "params": profile.count_params(variables["params"]),
        "flops_per_example": profile.flops_per_example(flops_model, variables, batch),
        "latency_ms_cpu": profile.latency_ms(model, variables, batch, repeats=10),
        "unit": "clip" if data.unit == "utterance" else data.unit,
        "note": "eval-mode forward of one test example, batch 1, jitted, median of 10, this CPU; "
        "FLOPs count matmuls and convolutions, loops unrolled",
    }


def markdown(p: dict) -> str:
    return "\n".join(
        [
            "## Model size and speed (primary variant, one example)",
            "",
            "| Variant | Parameters | GFLOPs per " + p["unit"] + " | CPU latency (ms) |",
            "| --- | ---: | ---: | ---: |",
            f"| {p['variant']} ({', '.join(p['modalities'])}) | {p['params']:,} | "
            f"{p['flops_per_example'] / 1e9:.3f} | {p['latency_ms_cpu']:.1f} |",
            "",
            f"_{p['note']}._",
            "",
        ]
    )


def _shifted_to_grouped(model_cfg):
    """A copy of the model section with every ``implementation="shifted"`` made "grouped";
    None when there is none."""
    import ml_collections

    out = ml_collections.ConfigDict(model_cfg.to_dict())
    found = False

    def visit(node):
        nonlocal found
        for key, value in node.items():
            if isinstance(value, ml_collections.ConfigDict):
                visit(value)
            elif key == "implementation" and value == "shifted":
                node[key] = "grouped"
                found = True

    visit(out)
    return out if found else None
