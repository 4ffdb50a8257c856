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
    from mmer_jax.data import device as device_data
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.models import profile
    from mmer_jax.train.loop import build_model
    from mmer_jax.train.run import primary_variant, variants_of

    name = primary_variant(cfg)
    modalities = variants_of(cfg)[name]
    pipeline = make_pipeline(cfg.data, list(modalities), cfg.seed, None)
    host = next(iter(pipeline.batches("test", cfg.train.batch_size, train=False)))
    host = {k: np.asarray(v)[:1] for k, v in host.items()}
    batch = device_data.prepare(host, cfg.data)
    model = build_model(cfg, pipeline, modalities)
    variables = model.init(
        {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, batch, train=False
    )
    flops_model = model
    if cfg.model.get("depthwise_impl") == "shifted":
        # Shifted depthwise convs are elementwise multiply-adds, which the counter skips; the
        # grouped form does the same arithmetic with the same parameters and counts as a conv.
        import ml_collections

        grouped = ml_collections.ConfigDict(cfg.to_dict())
        grouped.model.depthwise_impl = "grouped"
        flops_model = build_model(grouped, pipeline, modalities)
    return {
        "variant": name,
        "modalities": list(modalities),
        "params": profile.count_params(variables["params"]),
        "flops_per_example": profile.flops_per_example(flops_model, variables, batch),
        "latency_ms_cpu": profile.latency_ms(model, variables, batch, repeats=10),
        "unit": "dialogue" if cfg.data.get("unit") == "dialogue" else "clip",
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
