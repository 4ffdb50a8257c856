"""Corpora and augmentations are found through one Registry type; data sections are typed."""

import pytest

from data_prep import CORPORA
from data_prep import build as build_lib
from mmer_jax.data import augment
from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.errors import UsageError
from mmer_registry import Registry, UnknownName


def test_registries_are_registry_instances():
    for reg in (CORPORA, augment.AUGMENTATIONS, augment.OFFLINE_AUGMENTATIONS):
        assert isinstance(reg, Registry)
    assert {"generated_emotion", "iemocap", "ravdess"} <= set(CORPORA.names())
    assert augment.OFFLINE_AUGMENTATIONS.get("pitch_shift") is augment.pitch_shift
    assert augment.AUGMENTATIONS.get("additive_noise") is augment.additive_noise
    with pytest.raises(UnknownName, match="time_stretch"):
        augment.OFFLINE_AUGMENTATIONS.get("reverb")


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(build_lib.BuildError, match="unknown corpus 'emodbb'.*emodb.*ravdess"):
        build_lib.builder_class("emodbb")
    assert build_lib.builder_class("generated_emotion").__name__ == "GeneratedEmotion"


def test_unknown_data_key_is_a_usage_error_naming_it():
    with pytest.raises(UsageError, match="data.max_utterance"):
        make_pipeline({"corpus": "generated_emotion", "max_utterance": 8}, ["text"], seed=0)
    with pytest.raises(UsageError, match="data.unit"):
        make_pipeline({"unit": "scene"}, ["text"], seed=0)
