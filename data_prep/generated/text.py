"""Short token strings: situation words (one set per text group) hidden among neutral filler."""

from __future__ import annotations

import numpy as np

from data_prep.generated.design import TEXT_GROUP

FILLER = (
    "i we you they it this that the a to of and so then just really about there here today "
    "yesterday still maybe after before when what at in on with my our your his her was is were "
    "be have had went got said told saw came left back out up over one some all very"
).split()

# Words that describe the situation, not the feeling: each set is shared by a text group's two
# classes (see design.py), so words alone leave that pair ambiguous.
GROUP_WORDS = (
    "meeting schedule report office traffic bill queue deadline form printer manager parking",
    "family friend letter birthday wedding dog garden photo grandmother holiday visit gift",
    "suddenly noise dark door stranger phone alarm shadow knock storm call news",
)
GROUP_WORDS = tuple(tuple(s.split()) for s in GROUP_WORDS)

# Rare class-specific words: the weak within-pair cue, in design.CLASSES order.
CLASS_WORDS = (
    ("routine", "usual"),       # neutral
    ("finally", "together"),    # happy
    ("gone", "miss"),           # sad
    ("refused", "ignored"),     # angry
    ("alone", "behind"),        # fearful
    ("never", "expected"),      # surprised
)

VOCAB = tuple(sorted(set(FILLER).union(*GROUP_WORDS, *CLASS_WORDS)))


def sample(rng: np.random.Generator, label: int, within: float, cross: float = 0.08) -> str:
    """Returns a 5-12 word string for class ``label``.

    Args:
      rng: the example's generator (consumed in a fixed order).
      label: class index into ``design.CLASSES``.
      within: probability that a cue word is class-specific rather than a group word.
      cross: probability that a cue word comes from another group (label noise in the words).
    """
    length = int(rng.integers(5, 13))
    n_cue = 1 + int(rng.binomial(2, 0.35))
    words = [FILLER[i] for i in rng.integers(0, len(FILLER), length)]
    slots = rng.choice(length, n_cue, replace=False)
    for slot in slots:
        draw = rng.random()
        if draw < within:
            pool = CLASS_WORDS[label]
        elif draw < within + cross:
            pool = GROUP_WORDS[(TEXT_GROUP[label] + int(rng.integers(1, 3))) % 3]
        else:
            pool = GROUP_WORDS[TEXT_GROUP[label]]
        words[slot] = pool[int(rng.integers(0, len(pool)))]
    return " ".join(words)
