"""A run normalised per speaker (the own-corpus speech recipe) is refused by predict, serve and
export in one line that names the overrides training a deployable run, and those overrides are
the ones ``mmer train`` accepts on that recipe."""

from __future__ import annotations

import json
import re

import pytest

from mmer_jax import cli
from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError


@pytest.mark.parametrize("recipe", ["experiments/speech_recipe_folder.py",
                                    "experiments/speech_recipe_emodb.py"])
def test_refusal_names_overrides_that_train_accepts(recipe, tmp_path, capsys):
    from mmer_jax.serve.predictor import Predictor
    from mmer_jax.train.run import CONFIG_FILE

    cfg = config_lib.load_config_file(recipe)
    assert cfg.data.speaker_norm != "none"
    (tmp_path / CONFIG_FILE).write_text(cfg.to_json_best_effort())
    with pytest.raises(UsageError) as err:
        Predictor(str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "per speaker" in msg
    overrides = re.findall(r"--config\.\S+=\S+", msg)
    assert overrides, msg
    assert cli.main(["train", "--config", recipe, "--workdir", str(tmp_path / "new"),
                     *overrides, "--print-config"]) == 0
    data = json.loads(capsys.readouterr().out)["data"]
    assert data["speaker_norm"] == "none" and data["feature_norm"] is False
