"""RAVDESS: 24 actors (odd male, even female), speech and audio-visual speech, 8 emotions.

Build::

    mmer data build ravdess --config speech --manual_dir ~/corpora/ravdess \
        --data_dir ~/tensorflow_datasets

``--manual_dir`` holds ``Actor_01 … Actor_24/`` (at any depth, so the extracted
``Audio_Speech_Actors_01-24/`` and the per-actor video zips may sit side by side). File names are
``MM-VV-EE-II-SS-RR-AA``: modality (01 AV, 02 video, 03 audio), vocal channel (01 speech, 02 song),
emotion (01 neutral … 08 surprised), intensity, statement, repetition, actor.

Configs (splits are by actor, so no actor is on two sides):
  * ``speech``: audio-only speech ``03-01-*.wav``, 8 emotions; train actors 01-16,
    validation 17-20, test 21-24.
  * ``speech6``: as ``speech`` restricted to the six classes of S001 (neutral, happy, sad, angry,
    fearful, surprised); calm and disgust files are excluded (counted in the report's notes).
  * ``av``: audio-visual speech ``01-01-*.mp4`` with the same actor split as ``speech``. Stores
    the AAC track at 16 kHz, 16 uniformly sampled frames at 64×64, a 64×64 face crop per frame
    (OpenCV Haar cascade, whole frame when no face is found) and ``face_found``, the fraction of
    frames with a detected face.

Fold views (one build, any fold; ``data.fold=K`` with ``data.fold_protocol``): every build writes
``folds.json`` (``data_prep.folds``) with the protocol ``actors``: the 24 actors in 6 folds of 4
(01-04, 05-08, …); test = fold k, validation = fold k+1 (cyclic), train = the other 4 folds.
``speech_fold1..6`` and ``av_fold1..6`` are aliases of these views over ``speech`` / ``av``
(``data_prep.folds.FOLD_ALIASES``), not builds of their own. EmoBox's 6 RAVDESS folds are read
from its files with ``data.fold_protocol=emobox data.emobox_dir=PATH`` (its audio-only keys map to
the ``av`` clips of the same recordings).

Audio is mono int16 at 16 kHz (RAVDESS is 48 kHz: every clip is resampled, counted in
``build_report.json`` under ``orig_sample_rates``).

Skip policy (see ``data_prep._common.report``): a file with an unparseable name, an actor that
does not match its ``Actor_XX`` folder, a duplicate id or unreadable/empty/corrupt/truncated media
is skipped, logged and listed with its reason in the build report. A missing ``manual_dir``, no
matching files or an empty split is a hard ``CorpusError`` naming the directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common.clips import AVItem, audio_clip, av_clip
from data_prep._common.folds import speaker_protocol
from data_prep._common.report import CorpusError, ReportingMixin
from data_prep._common.speakers import assign_folds, check_disjoint, fold_splits, split_of

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
SIX = ("neutral", "happy", "sad", "angry", "fearful", "surprised")  # S001's six classes
ACTORS = tuple(f"{i:02d}" for i in range(1, 25))
FIXED_SPLIT = {"train": set(ACTORS[:16]), "validation": set(ACTORS[16:20]),
               "test": set(ACTORS[20:])}
NUM_FOLDS = 6
NUM_FRAMES, FRAME_SIZE, FACE_SIZE = 16, (64, 64), (64, 64)
DETECT_SIZE = (180, 320)  # 1280×720 / 4: faces stay well above the cascade's minimum size
NAME_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
ACTOR_DIR_RE = re.compile(r"^Actor_(\d{2})$")


class RavdessConfig(tfds.core.BuilderConfig):
    """``modality`` is ``speech`` (wav) or ``av`` (mp4)."""

    def __init__(self, *, modality: str, classes: tuple[str, ...] = EMOTIONS, **kwargs):
        super().__init__(version=tfds.core.Version("1.1.0"), **kwargs)
        self.modality, self.classes = modality, classes


def _configs() -> list[RavdessConfig]:
    cfgs = [
        RavdessConfig(name="speech", modality="speech", description="Audio speech, 8 classes."),
        RavdessConfig(name="speech6", modality="speech", classes=SIX,
                      description="Audio speech, S001's 6 classes."),
    ]
    cfgs.append(RavdessConfig(name="av", modality="av", description="Audio-visual speech."))
    return cfgs


def parse_name(stem: str) -> dict | None:
    """Parses ``MM-VV-EE-II-SS-RR-AA``; None for names outside the documented code ranges."""
    m = NAME_RE.match(stem)
    if not m:
        return None
    mod, chan, emo, inten, stmt, rep, actor = (int(g) for g in m.groups())
    if not (1 <= mod <= 3 and 1 <= chan <= 2 and 1 <= emo <= 8 and 1 <= inten <= 2
            and 1 <= stmt <= 2 and 1 <= rep <= 2 and 1 <= actor <= 24):
        return None
    return {"modality": mod, "channel": chan, "label": EMOTIONS[emo - 1],
            "intensity": ("normal", "strong")[inten - 1],
            "statement": ("kids", "dogs")[stmt - 1], "repetition": rep,
            "speaker": f"{actor:02d}", "gender": "male" if actor % 2 else "female"}


def speaker_splits(fold: int) -> dict[str, set[str]]:
    """Actors per split: the fixed split for ``fold == 0``, else fold ``fold`` of ``actors``."""
    return FIXED_SPLIT if fold == 0 else fold_splits(assign_folds(ACTORS, NUM_FOLDS), fold)


class Ravdess(ReportingMixin, tfds.core.GeneratorBasedBuilder):
    """RAVDESS speech (audio) and audio-visual speech."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release (one build per fold config).",
        "1.1.0": "folds.json (actors) stored with every build for fold views; the speech_fold* and "
                 "av_fold* configs became aliases of those views.",
    }
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "speech"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download RAVDESS from https://zenodo.org/record/1188976 (CC BY-NC-SA 4.0):
    Audio_Speech_Actors_01-24.zip for the speech configs, Video_Speech_Actor_XX.zip for av.
    Extract them under one folder (keeping the Actor_XX/ directories) and pass it as --manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        feats = {
            "id": tfds.features.Text(),
            "speaker": tfds.features.Text(),
            "gender": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=self.builder_config.classes),
            "intensity": tfds.features.ClassLabel(names=("normal", "strong")),
            "statement": tfds.features.ClassLabel(names=("kids", "dogs")),
            "repetition": F.scalar(np.int32),
            "audio": F.audio(),
        }
        if self.builder_config.modality == "av":
            feats.update(frames=F.frames(*FRAME_SIZE), face=F.frames(*FACE_SIZE),
                         face_found=F.scalar(np.float32))
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(feats),
            homepage="https://zenodo.org/record/1188976",
            citation="Livingstone & Russo, The Ryerson Audio-Visual Database of Emotional Speech "
                     "and Song (RAVDESS), PLoS ONE 2018.",
        )

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        root = self._manual_root(dl_manager)
        ext, want = (".wav", (3, 1)) if cfg.modality == "speech" else (".mp4", (1, 1))
        paths = sorted(p for p in root.rglob(f"*{ext}") if p.is_file())
        spk_split = FIXED_SPLIT
        check_disjoint(spk_split)
        self.report.notes["speakers"] = {k: sorted(v) for k, v in spk_split.items()}
        per_split: dict[str, list] = {"train": [], "validation": [], "test": []}
        seen: dict[str, Path] = {}
        excluded = 0
        for p in paths:
            meta = parse_name(p.stem)
            if meta is None:
                self.report.skip(p, "file name does not match MM-VV-EE-II-SS-RR-AA")
                continue
            folder = ACTOR_DIR_RE.match(p.parent.name)
            if folder and folder.group(1) != meta["speaker"]:
                self.report.skip(p, f"actor {meta['speaker']} in name but folder {p.parent.name}")
                continue
            if (meta["modality"], meta["channel"]) != want or meta["label"] not in cfg.classes:
                excluded += 1  # another modality/channel/class: not this config's data, no fault
                continue
            if p.stem in seen:
                self.report.skip(p, f"duplicate of {seen[p.stem]}")
                continue
            seen[p.stem] = p
            per_split[split_of(meta["speaker"], spk_split)].append((p, meta))
        self.report.notes["excluded_not_in_config"] = excluded
        if not seen:
            raise CorpusError(f"ravdess/{cfg.name}: no {want[0]:02d}-{want[1]:02d}-*{ext} files "
                              f"under {root}")
        self._require_splits(per_split, root)
        return {s: self._generate_examples(v, s) for s, v in per_split.items()}

    def _generate_examples(self, items, split):
        av = self.builder_config.modality == "av"
        # Decoding, resampling and face detection run in self.num_workers processes; the results
        # come back in item order, so the build is the same for any worker count.
        if av:
            work = [AVItem(str(p), str(p), NUM_FRAMES, FRAME_SIZE, FACE_SIZE, DETECT_SIZE)
                    for p, _ in items]
            decoded = self._decoded(av_clip, work, items, split)
        else:
            decoded = self._decoded(audio_clip, [p for p, _ in items], items, split)
        for (path, meta), res in decoded:
            audio, info = res[0], res[1]
            ex = {"id": path.stem, "speaker": meta["speaker"], "gender": meta["gender"],
                  "label": meta["label"], "intensity": meta["intensity"],
                  "statement": meta["statement"], "repetition": np.int32(meta["repetition"]),
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
            what="RAVDESS actors in 6 folds of 4 (01-04, 05-08, ...): test = fold k, "
                 "validation = fold k+1 (cyclic), train = the other 4")}
