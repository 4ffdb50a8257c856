"""CMU-MOSI / CMU-MOSEI feature pickles (MulT and MMSA releases), shared by both builders.

Two public releases of the same pre-extracted features:

* MulT (Tsai et al. 2019): ``mosi_data.pkl`` / ``mosi_data_noalign.pkl``,
  ``mosei_senti_data.pkl`` / ``mosei_senti_data_noalign.pkl``. ``{train, valid, test}`` ->
  ``{text, audio, vision, labels, id}``; arrays (N, T, D); labels (N, 1, 1) in [-3, 3]; ``id`` rows
  are (video, segment, ...) string arrays. Sequences are fixed-length padded (aligned T = 50).
* MMSA (Yu et al.): ``aligned_50.pkl`` / ``unaligned_50.pkl`` (one name for both corpora; see
  :func:`find_pickle` for where they are looked up), adding ``raw_text``, ``text_bert`` (N, 3, L),
  ``audio_lengths``, ``vision_lengths``, ``regression_labels``; ids are ``"video$_$clip"`` strings.

Audio features contain ``-inf`` (log of zero energy); every non-finite value is replaced by 0 and
counted per modality.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from data_prep._common.safe_pickle import safe_load

MULT_FILES = {
    ("cmu_mosi", "aligned"): "mosi_data.pkl",
    ("cmu_mosi", "unaligned"): "mosi_data_noalign.pkl",
    ("cmu_mosei", "aligned"): "mosei_senti_data.pkl",
    ("cmu_mosei", "unaligned"): "mosei_senti_data_noalign.pkl",
}
MMSA_FILES = {"aligned": "aligned_50.pkl", "unaligned": "unaligned_50.pkl"}
_CORPUS_DIRS = {"cmu_mosi": ("MOSI", "mosi", "CMU-MOSI", "cmu_mosi"),
                "cmu_mosei": ("MOSEI", "mosei", "CMU-MOSEI", "cmu_mosei")}
SPLIT_KEYS = {"train": ("train",), "validation": ("valid", "validation", "dev"), "test": ("test",)}
ID_SEP = "$_$"  # MMSA's video/clip separator; MulT id rows are joined with it too.
POLARITY = ("negative", "positive")  # positive means score >= 0 (non-negative), see polarity().


def find_pickle(root: str, corpus: str, alignment: str) -> tuple[str, str]:
    """Returns ``(path, "mult" | "mmsa")`` for the corpus/alignment under ``root``.

    Looks in ``root``, in a corpus-named folder (``MOSI``/``MOSEI``, ``CMU-MOSI``, ...) and in their
    ``Processed`` subfolders (MMSA's layout). MulT names are unique per corpus; MMSA's
    ``aligned_50.pkl`` is the same for both corpora, so a ``root`` holding one directly must be that
    corpus's folder. MulT is preferred when both exist (the 300-d GloVe features most papers use).

    Raises:
      FileNotFoundError: naming every path that was tried.
    """
    dirs = [root]
    for name in _CORPUS_DIRS[corpus]:
        dirs += [os.path.join(root, name), os.path.join(root, name, "Processed")]
    dirs.append(os.path.join(root, "Processed"))
    tried = []
    for d in dirs:
        p = os.path.join(d, MULT_FILES[(corpus, alignment)])
        tried.append(p)
        if os.path.isfile(p):
            return p, "mult"
    for d in dirs:
        p = os.path.join(d, MMSA_FILES[alignment])
        tried.append(p)
        if os.path.isfile(p):
            return p, "mmsa"
    raise FileNotFoundError(f"{root}: no {corpus} {alignment} pickle; tried " + ", ".join(tried))


@dataclasses.dataclass
class Clip:
    """One segment: id, its video, the regression score and float32 feature sequences."""

    id: str
    video: str
    score: float
    text_feat: np.ndarray
    audio_feat: np.ndarray
    vision_feat: np.ndarray
    text: str


def polarity(score: float) -> int:
    """0 negative (score < 0), 1 positive (score >= 0): the non-negative/negative binary task."""
    return int(score >= 0)


def _id_str(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    parts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p)
             for p in np.asarray(raw, dtype=object).reshape(-1)]
    return ID_SEP.join(p for p in parts if p != "")


def _split_dict(data: Any, path: str, split: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of splits, got {type(data).__name__}")
    for key in SPLIT_KEYS[split]:
        if key in data:
            return data[key]
    raise ValueError(f"{path}: no {split} split (looked for keys {SPLIT_KEYS[split]}; "
                     f"found {sorted(map(str, data))})")


class FeaturePickle:
    """A loaded MulT or MMSA pickle; :meth:`clips` yields cleaned :class:`Clip` per split."""

    def __init__(self, path: str, kind: str):
        self.path, self.kind = path, kind
        # latin1 lets Python 2 numpy pickles load; Python 3 pickles ignore the setting.
        self.data = safe_load(path, encoding="latin1")
        self.nonfinite: collections.Counter = collections.Counter()
        self.dims: dict[str, int] = {}

    def clips(self, split: str) -> Iterator[Clip]:
        """Yields the split's clips; counts replaced non-finite values in ``self.nonfinite``.

        Raises:
          ValueError: a missing split or key, or arrays whose lengths disagree (names the file).
        """
        d = _split_dict(self.data, self.path, split)
        need = ["text", "audio", "vision", "id"]
        need.append("regression_labels" if "regression_labels" in d else "labels")
        missing = [k for k in need if k not in d]
        if missing:
            raise ValueError(f"{self.path}: split {split} lacks keys {missing}; has {sorted(d)}")
        scores = np.asarray(d[need[-1]], dtype=np.float64).reshape(len(d["id"]), -1)[:, 0]
        n = len(scores)
        mods = {m: d[m] for m in ("text", "audio", "vision")}
        for m, arr in mods.items():
            if len(arr) != n or np.ndim(arr[0]) != 2:
                raise ValueError(f"{self.path}: {split}/{m} must be (N={n}, T, D), got "
                                 f"{np.shape(arr)}")
            self.dims[m] = int(np.shape(arr[0])[-1])
        lengths = {m: d.get(f"{m}_lengths") for m in ("audio", "vision")}
        raw_text = d.get("raw_text")
        for i in range(n):
            feats = {}
            for m, arr in mods.items():
                x = np.asarray(arr[i], dtype=np.float32)
                if lengths.get(m) is not None:
                    # MMSA pads unaligned sequences at the end; keep the real frames only.
                    # At least one frame, so no example has an all-padding sequence.
                    x = x[: max(1, min(len(x), int(lengths[m][i])))]
                bad = ~np.isfinite(x)
                if bad.any():
                    self.nonfinite[m] += int(bad.sum())
                    x = np.where(bad, np.float32(0), x)
                feats[m] = x
            if not np.isfinite(scores[i]):
                raise ValueError(f"{self.path}: {split} clip {i} has a non-finite label")
            clip_id = _id_str(d["id"][i])
            yield Clip(id=clip_id, video=clip_id.split(ID_SEP)[0], score=float(scores[i]),
                       text_feat=feats["text"], audio_feat=feats["audio"],
                       vision_feat=feats["vision"],
                       text=str(raw_text[i]) if raw_text is not None else "")
