"""Which emotions each modality can and cannot tell apart: the class/cue design of the corpus.

Every class belongs to one *group* per modality, and a modality's strong cues depend only on the
group, so each modality alone confuses the two classes of a group. The three groupings are disjoint
perfect matchings of the six classes (no pair is shared), hence any two modalities together pin
down the class. A weak within-pair nudge (``side`` times a config strength) lifts a unimodal model
a little above the 50 % that its group cue allows, without making any single modality sufficient.
"""

from __future__ import annotations

import numpy as np

CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "surprised")

# Group index per class, in CLASSES order.
#   audio (arousal/prosody): {neutral, sad}, {happy, surprised}, {angry, fearful}
#   video (face):            {neutral, happy}, {sad, fearful}, {angry, surprised}
#   text (situation words):  {neutral, angry}, {happy, sad}, {fearful, surprised}
AUDIO_GROUP = np.array([0, 1, 0, 2, 2, 1])
VIDEO_GROUP = np.array([0, 0, 1, 2, 1, 2])
TEXT_GROUP = np.array([0, 1, 1, 0, 2, 2])

# Which member of its pair a class is (+1 / -1): the sign of the weak within-pair nudge.
AUDIO_SIDE = np.array([+1, +1, -1, +1, -1, -1])
VIDEO_SIDE = np.array([-1, +1, -1, +1, +1, -1])
TEXT_SIDE = np.array([-1, +1, -1, +1, -1, +1])


def pairs(groups: np.ndarray) -> list[tuple[str, str]]:
    """Returns the class pairs a modality confuses, as names."""
    return [tuple(CLASSES[i] for i in np.flatnonzero(groups == g)) for g in range(3)]


def _check_design() -> None:
    # Any two groupings must separate every class, else fusion could not resolve them.
    for a, b in ((AUDIO_GROUP, VIDEO_GROUP), (AUDIO_GROUP, TEXT_GROUP), (VIDEO_GROUP, TEXT_GROUP)):
        combos = set(zip(a.tolist(), b.tolist(), strict=True))
        assert len(combos) == len(CLASSES), (a, b)
    for groups, side in ((AUDIO_GROUP, AUDIO_SIDE), (VIDEO_GROUP, VIDEO_SIDE),
                         (TEXT_GROUP, TEXT_SIDE)):
        for g in range(3):
            assert sorted(side[groups == g].tolist()) == [-1, 1], (groups, side)


_check_design()
