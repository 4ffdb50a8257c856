"""CREMA-D: 7,442 clips from 91 actors (1001-1091), 12 sentences, 6 emotions.

Build::

    mmer data build crema_d --config audio --manual_dir ~/corpora/CREMA-D \
        --data_dir ~/tensorflow_datasets

``--manual_dir`` is the repository root holding ``AudioWAV/`` (and ``VideoFlash/`` for the av
configs; ``VideoDemographics.csv``, when present, supplies each actor's sex). File names are
``AAAA_SSS_EEE_LL.wav``: actor, sentence code, emotion (ANG DIS FEA HAP NEU SAD), level
(LO MD HI XX).

Configs (splits by actor over the full list 1001-1091, so a missing file never moves an actor):
  * ``audio``: actors sorted into 10 contiguous groups (10, 9, …, 9 actors): groups 1-8 train
    (1001-1073), group 9 validation (1074-1082), group 10 test (1083-1091).
  * ``av``: the same split, adding 16 sampled frames (64×64), face crops and ``face_found`` from
    ``VideoFlash/<stem>.flv``; audio still comes from ``AudioWAV``.

Fold views (one build, any fold; ``data.fold=K`` with ``data.fold_protocol``): every build writes
``folds.json`` (``data_prep.folds``) with the protocol ``actors``: 5 contiguous folds of the actor
list 1001-1091 (19, 18, 18, 18, 18 actors); test = fold k, validation = fold k+1 (cyclic), train
= the rest. ``audio_fold1..5`` and ``av_fold1..5`` are aliases of these views over ``audio`` /
``av`` (``data_prep.folds.FOLD_ALIASES``), not builds of their own. EmoBox's CREMA-D fold (one,
not speaker-independent) is read from its files with ``data.fold_protocol=emobox
data.emobox_dir=PATH``.

Skip policy (see ``data_prep._common.report``): unparseable names, unknown actors, unreadable,
empty, corrupt or truncated media and (av) a missing ``.flv`` are skipped, logged and listed with
their reason in ``build_report.json``. A missing ``manual_dir``/``AudioWAV``/``VideoFlash`` or an
empty split is a hard ``CorpusError`` naming the directory.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common.clips import AVItem, audio_clip, av_clip
from data_prep._common.folds import speaker_protocol
from data_prep._common.report import CorpusError, ReportingMixin
from data_prep._common.speakers import assign_folds, check_disjoint, fold_splits, split_of
from data_prep._common.text import TextDecodeError, read_text

CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
LABELS = ("anger", "disgust", "fear", "happy", "neutral", "sad")
CODE_TO_LABEL = dict(zip(CODES, LABELS, strict=True))
LEVELS = ("LO", "MD", "HI", "XX")
ACTORS = tuple(str(a) for a in range(1001, 1092))
NUM_FOLDS = 5
NUM_FRAMES, FRAME_SIZE, FACE_SIZE = 16, (64, 64), (64, 64)
DETECT_SIZE = (240, 320)  # VideoFlash clips are 480×360
NAME_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


class CremaDConfig(tfds.core.BuilderConfig):
    """``av``: store frames and face crops beside the audio."""

    def __init__(self, *, av: bool, **kwargs):
        super().__init__(version=tfds.core.Version("1.1.0"), **kwargs)
        self.av = av


def _configs() -> list[CremaDConfig]:
    return [CremaDConfig(name="audio", av=False, description="Audio, fixed actor split."),
            CremaDConfig(name="av", av=True, description="Audio-visual, fixed actor split.")]


def parse_name(stem: str) -> dict | None:
    """Parses ``1001_DFA_ANG_XX``; None when a field is outside the documented codes."""
    m = NAME_RE.match(stem)
    if not m or m.group(3) not in CODE_TO_LABEL or m.group(4) not in LEVELS:
        return None
    return {"speaker": m.group(1), "sentence": m.group(2), "label": CODE_TO_LABEL[m.group(3)],
            "level": m.group(4)}


def speaker_splits(fold: int) -> dict[str, set[str]]:
    """Actors per split: fixed 8/1/1 of 10 groups for ``fold == 0``, else fold ``fold`` of
    ``actors``."""
    if fold == 0:
        groups = assign_folds(ACTORS, 10)
        return {"train": {a for g in groups[:8] for a in g}, "validation": set(groups[8]),
                "test": set(groups[9])}
    return fold_splits(assign_folds(ACTORS, NUM_FOLDS), fold)


def read_demographics(root: Path) -> dict[str, str]:
    """Actor -> ``male``/``female`` from ``VideoDemographics.csv`` (empty when absent)."""
    path = root / "VideoDemographics.csv"
    if not path.is_file():
        return {}
    try:
        text = read_text(path).text  # the project's text decoder (UTF-16, cp1252, BOM)
    except TextDecodeError as exc:
        raise CorpusError(str(exc)) from exc
    rows = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    return {row["ActorID"].strip(): (row.get("Sex") or "").strip().lower()
            for row in rows if row.get("ActorID")}


class CremaD(ReportingMixin, tfds.core.GeneratorBasedBuilder):
    """CREMA-D crowd-sourced emotional multimodal actors dataset."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release (one build per fold config).",
        "1.1.0": "folds.json (actors) stored with every build for fold views; the audio_fold* and "
                 "av_fold* configs became aliases of those views.",
    }
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "audio"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Clone https://github.com/CheyneyComputerScience/CREMA-D (Git LFS; ODbL) and pass the clone as
    --manual_dir: it must contain AudioWAV/ (and VideoFlash/ for the av configs).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        feats = {
            "id": tfds.features.Text(),
            "speaker": tfds.features.Text(),
            "gender": tfds.features.Text(),
            "sentence": tfds.features.Text(),
            "level": tfds.features.ClassLabel(names=LEVELS),
            "label": tfds.features.ClassLabel(names=LABELS),
            "audio": F.audio(),
        }
        if self.builder_config.av:
            feats.update(frames=F.frames(*FRAME_SIZE), face=F.frames(*FACE_SIZE),
                         face_found=F.scalar(np.float32))
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(feats),
            homepage="https://github.com/CheyneyComputerScience/CREMA-D",
            citation="Cao et al., CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset, "
                     "IEEE Trans. Affective Computing 2014.",
        )

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        root = self._manual_root(dl_manager)
        wav_dir = root / "AudioWAV"
        if not wav_dir.is_dir():
            raise CorpusError(f"crema_d: {wav_dir} does not exist (expected the CREMA-D root)")
        video_dir = root / "VideoFlash"
        if cfg.av and not video_dir.is_dir():
            raise CorpusError(f"crema_d/{cfg.name}: {video_dir} does not exist")
        paths = sorted(p for p in wav_dir.iterdir() if p.suffix.lower() == ".wav")
        if not paths:
            raise CorpusError(f"crema_d: no .wav files in {wav_dir}")
        spk_split = speaker_splits(0)
        check_disjoint(spk_split)
        self.report.notes["speakers"] = {k: sorted(v) for k, v in spk_split.items()}
        gender = read_demographics(root)
        per_split: dict[str, list] = {"train": [], "validation": [], "test": []}
        for p in paths:
            meta = parse_name(p.stem)
            if meta is None:
                self.report.skip(p, "file name does not match AAAA_SSS_EEE_LL.wav")
                continue
            split = split_of(meta["speaker"], spk_split)
            if split is None:
                self.report.skip(p, f"actor {meta['speaker']} outside 1001-1091")
                continue
            meta["gender"] = gender.get(meta["speaker"], "unknown")
            meta["video"] = video_dir / f"{p.stem}.flv" if cfg.av else None
            per_split[split].append((p, meta))
        self._require_splits(per_split, root)
        return {s: self._generate_examples(v, s) for s, v in per_split.items()}

    def _generate_examples(self, items, split):
        av = self.builder_config.av
        # Decoding, resampling and face detection run in self.num_workers processes; the results
        # come back in item order, so the build is the same for any worker count.
        if av:
            work = [AVItem(str(p), str(meta["video"]), NUM_FRAMES, FRAME_SIZE, FACE_SIZE,
                           DETECT_SIZE) for p, meta in items]
            decoded = self._decoded(av_clip, work, items, split)
        else:
            decoded = self._decoded(audio_clip, [p for p, _ in items], items, split)
        for (path, meta), res in decoded:
            audio, info = res[0], res[1]
            ex = {"id": path.stem, "speaker": meta["speaker"], "gender": meta["gender"],
                  "sentence": meta["sentence"], "level": meta["level"], "label": meta["label"],
                  "audio": audio}
            extra = {}
            if av:
                ex.update(frames=res.frames, face=res.faces, face_found=np.float32(res.face_found))
                extra["face_found"] = res.face_found
            self.report.add(split, meta["label"], meta["speaker"], info["duration_s"],
                            info["orig_sr"], path=path, media=info, example_id=path.stem, **extra)
            yield path.stem, ex

    def _fold_protocols(self, examples):
        speaker_of = {i: e["speaker"] for i, e in examples.items()}
        return {"actors": speaker_protocol(
            speaker_of, NUM_FOLDS, speakers=ACTORS,
            what="CREMA-D actors 1001-1091 in 5 contiguous folds (19, 18, 18, 18, 18): "
                 "test = fold k, validation = fold k+1 (cyclic), train = the rest")}
