"""The report's FLOP count does not depend on how S003's depthwise convs are computed."""

import pytest

from mmer_jax import config as config_lib
from mmer_jax.reproduce.model_profile import profile_config


@pytest.mark.slow  # long for the default run; `pytest -m slow` runs it
def test_s003_flops_same_for_shifted_and_grouped_depthwise(tiny_generated):
    def profile(impl):
        cfg = config_lib.load(
            "experiments/s003_generated.py",
            [
                "data.config=tiny",
                f"data.data_dir={tiny_generated}",
                "data.read_threads=0",
                f"model.image.implementation={impl}",
            ],
        )
        cfg.data.offline_augment = []
        return profile_config(cfg)

    shifted, grouped = profile("shifted"), profile("grouped")
    assert shifted["params"] == grouped["params"] > 0
    assert shifted["flops_per_example"] == grouped["flops_per_example"] > 0
    assert shifted["latency_ms_cpu"] > 0
