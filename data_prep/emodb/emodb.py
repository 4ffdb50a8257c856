"""EmoDB (Berlin Database of Emotional Speech): 535 German utterances, 10 speakers, 7 emotions.

Build::

    mmer data build emodb --config default --manual_dir ~/corpora/emodb \
        --data_dir ~/tensorflow_datasets

``--manual_dir`` is the corpus root (containing ``wav/``) or the ``wav/`` folder itself. File names
are ``SSTTTEv.wav``: speaker ``SS`` (first 2 chars), text id ``TTT`` (chars 3-5), emotion letter
``E`` (6th char: W anger, L boredom, E disgust, A fear, F happiness, T sadness, N neutral), version.

Configs:
  * ``default``: speaker-independent fixed split, each held-out pair one man and one woman:
    train speakers 03 08 09 10 11 14, validation 12 13, test 15 16.
  * ``lso_fold1..5``: leave-two-speakers-out. Speakers sorted and paired
    ((03,08) (09,10) (11,12) (13,14) (15,16)); test = pair k, validation = pair k+1 (cyclic),
    train = the other three pairs.
  * ``emobox_fold1..5``: the EmoBox benchmark folds, read from
    ``emobox_folds/emodb_{train,test}_fold_K.jsonl`` (next to ``wav/``). NOT speaker-independent.
    Validation = a deterministic ~10% of EmoBox's train list (stable hash of the utterance id).

Fold views (one build, any fold; ``data.fold=K`` with ``data.fold_protocol``): every config stores
the whole corpus, and its build writes ``folds.json`` (``data_prep.folds``) with the protocols
``lso`` (the 5 leave-two-speakers-out folds above) and, when ``emobox_folds/`` is present,
``emobox`` (EmoBox's 5 folds). So ``default`` built once serves all 10 folds.

Audio is stored mono int16 at 16 kHz; other rates (e.g. 22,050 Hz copies) are resampled and the
original rate is counted in ``build_report.json``.

Skip policy (see ``data_prep._common.report``): a file with an unparseable name or unreadable,
empty, corrupt or truncated audio is skipped, logged and listed with its reason in the build
report. A missing ``manual_dir``, no ``.wav`` files or an empty split is a hard ``CorpusError``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common.clips import audio_clip
from data_prep._common.folds import emobox_protocol, read_emobox_lists, speaker_group_folds
from data_prep._common.report import CorpusError, ReportingMixin
from data_prep._common.speakers import assign_folds, carve, check_disjoint, fold_splits, split_of

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
    """``protocol`` is ``fixed``, ``lso`` or ``emobox``; ``fold`` is 1-based (0 for fixed)."""

    def __init__(self, *, protocol: str, fold: int = 0, **kwargs):
        super().__init__(version=tfds.core.Version("1.1.0"), **kwargs)
        self.protocol, self.fold = protocol, fold


def _configs() -> list[EmodbConfig]:
    cfgs = [EmodbConfig(name="default", protocol="fixed",
                        description="Speaker-independent: val speakers 12+13, test 15+16.")]
    cfgs += [EmodbConfig(name=f"lso_fold{k}", protocol="lso", fold=k,
                         description=f"Leave-two-speakers-out fold {k}.")
             for k in range(1, NUM_FOLDS + 1)]
    cfgs += [EmodbConfig(name=f"emobox_fold{k}", protocol="emobox", fold=k,
                         description=f"EmoBox fold {k} (not speaker-independent).")
             for k in range(1, NUM_FOLDS + 1)]
    return cfgs


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

        cfg = self.builder_config
        self._emobox_dir = _emobox_dir(root, wav_dir)
        if cfg.protocol == "emobox":
            assign = self._emobox_assignment(root, wav_dir, cfg.fold, set(items))
        else:
            if cfg.protocol == "fixed":
                spk_split = DEFAULT_SPLIT
            else:
                folds = assign_folds(SPEAKERS, NUM_FOLDS)  # sorted pairs
                spk_split = fold_splits(folds, cfg.fold)
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

    def _emobox_assignment(self, root: Path, wav_dir: Path, fold: int,
                           available: set[str]) -> dict[str, str]:
        """Maps file stem -> split from the EmoBox jsonl lists."""
        fold_dir = self._emobox_dir
        if fold_dir is None:
            raise CorpusError(f"emodb: config emobox_fold{fold} needs {root / 'emobox_folds'}")
        lists = {}
        for part in ("train", "test"):
            f = fold_dir / f"emodb_{part}_fold_{fold}.jsonl"
            if not f.is_file():
                raise CorpusError(f"emodb: missing EmoBox list {f}")
            with open(f) as fh:
                # Keys look like "emodb-03a01Wa"; the wav path's stem is the same utterance.
                lists[part] = [Path(json.loads(line)["wav"]).stem for line in fh if line.strip()]
        val = carve(lists["train"], EMOBOX_VALID_FRACTION, salt=f"emodb-emobox-{fold}")
        assign = {}
        for part, stems in lists.items():
            for stem in stems:
                if stem not in available:
                    self.report.skip(stem, f"listed in EmoBox {part} fold {fold} but no usable "
                                     f"wav in {wav_dir}")
                    continue
                assign[stem] = "validation" if stem in val else part
        self.report.notes["emobox"] = {"fold": fold, "validation_fraction": EMOBOX_VALID_FRACTION,
                                       "speaker_independent": False}
        return assign

    def _fold_protocols(self, examples):
        speaker_of = {i: e["speaker"] for i, e in examples.items()}
        groups = assign_folds(SPEAKERS, NUM_FOLDS)
        protocols = {"lso": {
            "description": "EmoDB leave-two-speakers-out: sorted speaker pairs, test = pair k, "
                           "validation = pair k+1 (cyclic), train = the other three",
            "speaker_independent": True, "folds": speaker_group_folds(speaker_of, groups)}}
        if self._emobox_dir is not None:
            lists = read_emobox_lists(self._emobox_dir, "emodb")
            if lists:
                protocols["emobox"] = emobox_protocol(lists, {i: i for i in examples}, speaker_of,
                                                      "emodb", EMOBOX_VALID_FRACTION)
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
