"""EmoDB (Berlin Database of Emotional Speech): 535 German utterances, 10 speakers, 7 emotions.

Build::

    mmer data build emodb --config default --manual_dir ~/corpora/emodb \
        --data_dir ~/tensorflow_datasets

``--manual_dir`` is the corpus root (containing ``wav/``) or the ``wav/`` folder itself. File names
are ``SSTTTEv.wav``: speaker ``SS`` (first 2 chars), text id ``TTT`` (chars 3-5), emotion letter
``E`` (6th char: W anger, L boredom, E disgust, A fear, F happiness, T sadness, N neutral), version.

Config ``default``: speaker-independent fixed split, each held-out pair one man and one woman:
train speakers 03 08 09 10 11 14, validation 12 13, test 15 16.

Fold views (one build, any fold; ``data.fold=K`` with ``data.fold_protocol``): the build writes
``folds.json`` (``data_prep.folds``) with the protocols
  * ``lso``: leave-two-speakers-out. Speakers sorted and paired ((03,08) (09,10) (11,12) (13,14)
    (15,16)); test = pair k, validation = pair k+1 (cyclic), train = the other three pairs.
  * ``emobox``, when ``emobox_folds/emodb_{train,test}_fold_K.jsonl`` sits next to ``wav/`` (or
    read from EmoBox's files at any time with ``data.emobox_dir=PATH``): the EmoBox benchmark
    folds. NOT speaker-independent. Validation = a deterministic ~10% of EmoBox's train list
    (stable hash of the utterance id). A listed file that was not stored (or a stored one that is
    not listed) makes reading these folds an error naming it.
So ``default`` built once serves all 10 folds; ``lso_fold1..5`` and ``emobox_fold1..5`` are aliases
of these views (``data_prep.folds.FOLD_ALIASES``), not builds of their own.

Audio is stored mono int16 at 16 kHz; other rates (e.g. 22,050 Hz copies) are resampled and the
original rate is counted in ``build_report.json``.

Skip policy (see ``data_prep._common.report``): a file with an unparseable name or unreadable,
empty, corrupt or truncated audio is skipped, logged and listed with its reason in the build
report. A missing ``manual_dir``, no ``.wav`` files or an empty split is a hard ``CorpusError``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import emobox
from data_prep._common import features as F
from data_prep._common.clips import audio_clip
from data_prep._common.folds import speaker_group_folds
from data_prep._common.report import CorpusError, ReportingMixin
from data_prep._common.speakers import assign_folds, check_disjoint, split_of

LABELS = ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral")
LETTER_TO_LABEL = dict(zip("WLEAFTN", LABELS, strict=True))
SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
# Speaker sex from the corpus documentation (erkennung.txt / the EmoDB paper).
GENDER = {"03": "m", "08": "f", "09": "f", "10": "m", "11": "m", "12": "m", "13": "f",
          "14": "f", "15": "m", "16": "f"}
DEFAULT_SPLIT = {"train": {"03", "08", "09", "10", "11", "14"}, "validation": {"12", "13"},
                 "test": {"15", "16"}}
NAME_RE = re.compile(
    r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<emo>[WLEAFTN])(?P<ver>[a-z])$")
NUM_FOLDS = 5
EMOBOX_VALID_FRACTION = 0.1


class EmodbConfig(tfds.core.BuilderConfig):
    """The one EmoDB config (its folds are views: the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__(version=tfds.core.Version("1.1.0"), **kwargs)


def _configs() -> list[EmodbConfig]:
    return [EmodbConfig(name="default",
                        description="Speaker-independent: val speakers 12+13, test 15+16.")]


def parse_name(stem: str) -> dict[str, str] | None:
    """Parses an EmoDB file stem (``03a01Fa``); None when it does not follow the scheme."""
    m = NAME_RE.match(stem)
    if not m:
        return None
    return {"speaker": m["speaker"], "text_id": m["text"],
            "label": LETTER_TO_LABEL[m["emo"]], "version": m["ver"]}


def _emobox_dir(root: Path, wav_dir: Path) -> Path | None:
    """``emobox_folds/`` next to ``wav/`` (or in the corpus root), when present."""
    return next((d for d in (root / "emobox_folds", wav_dir.parent / "emobox_folds")
                 if d.is_dir()), None)


def find_wav_dir(root: Path) -> Path:
    """Accepts the corpus root (with ``wav/``) or the ``wav`` folder itself."""
    return root / "wav" if (root / "wav").is_dir() else root


class Emodb(ReportingMixin, tfds.core.GeneratorBasedBuilder):
    """EmoDB speech emotion corpus (audio only)."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "folds.json (lso, emobox) stored with every build for fold views; shared audio "
                 "rules: out-of-range float audio scaled by 1/peak, clips under one analysis "
                 "window after resampling skipped, silent clips flagged.",
    }
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "default"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download EmoDB (http://emodb.bilderbar.info/download/, free for research) and pass the folder
    containing `wav/` (or `wav/` itself) as --manual_dir. For the emobox_fold* configs, put EmoBox's
    `emodb_{train,test}_fold_K.jsonl` files in `emobox_folds/` next to `wav/`.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "id": tfds.features.Text(),
                "speaker": tfds.features.Text(),
                "gender": tfds.features.Text(),
                "text_id": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=LABELS),
                "audio": F.audio(),
            }),
            supervised_keys=("audio", "label"),
            homepage="http://emodb.bilderbar.info/",
            citation="Burkhardt et al., A Database of German Emotional Speech, Interspeech 2005.",
        )

    def _split_generators(self, dl_manager):
        root = self._manual_root(dl_manager)
        wav_dir = find_wav_dir(root)
        paths = sorted(p for p in wav_dir.iterdir() if p.suffix.lower() == ".wav")
        if not paths:
            raise CorpusError(f"emodb: no .wav files in {wav_dir}")
        items = {}
        for p in paths:
            meta = parse_name(p.stem)
            if meta is None:
                self.report.skip(p, "file name does not match SSTTTEv.wav (speaker, text, emotion)")
                continue
            items[p.stem] = (p, meta)
        if not items:
            raise CorpusError(f"emodb: no file in {wav_dir} has an EmoDB name")

        self._emobox_dir = _emobox_dir(root, wav_dir)
        spk_split = DEFAULT_SPLIT
        check_disjoint(spk_split)
        self.report.notes["speakers"] = {k: sorted(v) for k, v in spk_split.items()}
        assign = {}
        for stem, (p, meta) in items.items():
            split = split_of(meta["speaker"], spk_split)
            if split is None:
                self.report.skip(p, f"speaker {meta['speaker']} is not an EmoDB speaker")
            else:
                assign[stem] = split
        per_split = {s: [] for s in ("train", "validation", "test")}
        for stem, split in sorted(assign.items()):
            per_split[split].append(items[stem])
        self._require_splits(per_split, root)
        return {s: self._generate_examples(v, s) for s, v in per_split.items()}

    def _fold_protocols(self, examples):
        speaker_of = {i: e["speaker"] for i, e in examples.items()}
        groups = assign_folds(SPEAKERS, NUM_FOLDS)
        protocols = {"lso": {
            "description": "EmoDB leave-two-speakers-out: sorted speaker pairs, test = pair k, "
                           "validation = pair k+1 (cyclic), train = the other three",
            "speaker_independent": True, "folds": speaker_group_folds(speaker_of, groups)}}
        if self._emobox_dir is not None:  # stored with the build; errors are raised on reading
            try:
                lists = emobox.read_lists(self._emobox_dir, "emodb")
            except emobox.EmoboxError as exc:
                self.report.notes["emobox"] = f"not stored: {exc}"
            else:
                protocols["emobox"] = emobox.protocol(
                    lists, emobox.id_mapper("emodb", speaker_of), speaker_of, "emodb",
                    EMOBOX_VALID_FRACTION)
        return protocols

    def _generate_examples(self, items, split):
        # Decoding and resampling run in self.num_workers processes; results come back in order.
        work = [path for path, _ in items]
        for (path, meta), res in self._decoded(audio_clip, work, items, split):
            audio, info = res
            self.report.add(split, meta["label"], meta["speaker"], info["duration_s"],
                            info["orig_sr"], path=path, media=info, example_id=path.stem)
            yield path.stem, {
                "id": path.stem, "speaker": meta["speaker"],
                "gender": GENDER.get(meta["speaker"], "unknown"), "text_id": meta["text_id"],
                "label": meta["label"], "audio": audio.astype(np.int16),
            }
