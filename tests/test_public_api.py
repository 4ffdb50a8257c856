"""The curated top-level API resolves every name it advertises to the object it documents."""

import importlib

import pytest

import mmer_jax


@pytest.mark.parametrize("name", mmer_jax.__all__)
def test_every_exported_name_resolves_to_its_source(name):
    module, attr = mmer_jax._EXPORTS[name].split(":")
    assert getattr(mmer_jax, name) is getattr(importlib.import_module(module), attr)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mmer_jax.nope  # noqa: B018


def test_registries_list_the_seed_systems_and_corpora():
    assert {"quickstart", "s001", "s002", "s003", "text_cnn", "bc_lstm", "cmn"} <= set(
        mmer_jax.SYSTEMS.names()
    )
    assert {"concat", "dynconv_gate", "tfn"} <= set(mmer_jax.FUSIONS.names())
    assert mmer_jax.SEQUENCE_FUSIONS.names() == ["attention_residual"]  # a kind of its own
    assert {"emodb", "iemocap", "generated_emotion"} <= set(mmer_jax.CORPORA.names())
    with pytest.raises(KeyError, match="unknown system 'nope'; known: bc_lstm"):
        mmer_jax.SYSTEMS["nope"]


def test_dir_lists_only_the_curated_names():
    assert dir(mmer_jax) == sorted(["__version__", *mmer_jax._EXPORTS])
