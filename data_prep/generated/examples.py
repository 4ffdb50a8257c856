"""One ``generated_emotion`` example from its seeds: the unit of work of a (parallel) build.

Tensorflow-free, so a build's worker processes import only numpy and scipy (see
``data_prep._common.parallel``). Every example depends only on (seed, speaker index, utterance
index, label), never on which process makes it or what it made before.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from data_prep.generated import audio, face, text

FPS = 8


class Utterance(NamedTuple):
    """What one example is drawn from (the config's ``seed``, ``within_pair``, ``image_size``)."""

    seed: int
    within_pair: float
    image_size: int
    speaker_index: int
    utt: int
    label: int


def speaker_labels(seed: int, speaker_index: int, count: int) -> list[int]:
    """Balanced labels for ``count`` utterances of one speaker, so every split covers all
    classes."""
    from data_prep.generated.design import CLASSES

    return np.random.default_rng([seed, 2, speaker_index]).permutation(
        np.arange(count) % len(CLASSES)).tolist()


@functools.lru_cache(maxsize=64)
def _speaker(seed: int, speaker_index: int):
    voice = audio.sample_speaker(np.random.default_rng([seed, 0, speaker_index]))
    looks = face.sample_speaker(np.random.default_rng([seed, 1, speaker_index]))
    return voice, looks


def make_example(u: Utterance) -> tuple[str, dict[str, Any]]:
    """``(key, example)`` of one utterance; separate generators per (seed, purpose, speaker[,
    utterance]) make it independent of how many others are built and in which order."""
    spk = f"spk{u.speaker_index:02d}"
    voice, looks = _speaker(u.seed, u.speaker_index)
    rng = np.random.default_rng([u.seed, 3, u.speaker_index, u.utt])
    num_samples = int(rng.integers(int(0.8 * audio.SAMPLE_RATE), int(1.2 * audio.SAMPLE_RATE)))
    num_frames = int(round(num_samples / audio.SAMPLE_RATE * FPS))
    key = f"{spk}_{u.utt:04d}"
    return key, {
        "id": key,
        "speaker": spk,
        "label": u.label,
        "audio": audio.synthesize(rng, u.label, voice, num_samples, u.within_pair),
        "frames": face.render(rng, u.label, looks, num_frames, u.image_size, u.within_pair),
        # The text cue is a probability per cue word; 0.2 keeps class words rare.
        "text": text.sample(rng, u.label, 0.2 * u.within_pair),
    }
