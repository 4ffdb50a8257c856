"""IEMOCAP (Busso et al. 2008): dyadic dialogues, 5 sessions x 2 actors, utterance emotion labels.

Build commands::

  mmer data build iemocap --config 4class --manual_dir ~/IEMOCAP_full_release --data_dir ~/tfds
  mmer data build iemocap --config 6class --manual_dir ~/IEMOCAP_full_release --data_dir ~/tfds
  mmer data build iemocap --config 4class_av --manual_dir ~/IEMOCAP_full_release --data_dir ~/tfds
  mmer data build iemocap --config text --manual_dir DIR_WITH_iemocap.pkl --data_dir ~/tfds

Configs:
  * ``6class``: hap sad neu ang exc fru (the COSMIC order); other labels (xxx oth sur fea dis) are
    discarded and counted in the build report's ``notes.discarded_labels``.
  * ``4class``: hap (= hap + exc) sad neu ang; 5,531 utterances on the full release.
  * ``4class_av`` / ``6class_av``: the same plus ``frames``/``face``/``face_found`` sampled from the
    dialogue's ``dialog/avi/DivX/<dialogue>.avi`` over the utterance's time span. The plain configs
    need no video, so an audio+text build works without the avi files.
  * ``text``: conv-emotion's COSMIC ``iemocap.pkl`` (transcripts, 'M'/'F' speakers, 6 labels and the
    file's own train/valid/test dialogue lists); no audio.

Fields (see docs/contracts.md): ``id`` (turn name, e.g. ``Ses01F_impro01_F000``; ``text`` config:
``<dialogue>_<turn>``), ``speaker`` (session + speaking actor's gender, e.g. ``Ses01M``: the
corpus's 10 actors; ``text`` config: the pickle's 'M'/'F'), ``label``, ``text``, ``dialogue_id``,
``turn`` (0-based position among the dialogue's *kept* utterances ordered by start time, so a
dialogue model sees contiguous turns; a skipped file leaves a gap), ``audio``, ``vad`` (mean
annotator valence, arousal, dominance, 1-5).

Splits: Session 5 is ``test``; of Sessions 1-4, the 12 validation dialogues of the conv-emotion
split (``parse.VALID_DIALOGUES``, ~10 % of dialogues) are ``validation`` and the rest ``train``. The
carve is by dialogue, so no dialogue (and no Session 5 speaker) appears on two sides.
"""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common.report import CorpusError, ReportingMixin
from data_prep.iemocap import parse
from data_prep.iemocap.video import DialogueWork, dialogue_clips

_CITATION = """@article{busso2008iemocap,
  title={IEMOCAP: Interactive emotional dyadic motion capture database},
  author={Busso, Carlos and Bulut, Murtaza and Lee, Chi-Chun and Kazemzadeh, Abe and Mower, Emily
          and Kim, Samuel and Chang, Jeannette N and Lee, Sungbok and Narayanan, Shrikanth S},
  journal={Language Resources and Evaluation}, volume={42}, number={4}, pages={335--359},
  year={2008}}"""


@dataclasses.dataclass
class IemocapConfig(tfds.core.BuilderConfig):
    """``classes``: 4 or 6; ``source``: "release" or "cosmic"; ``video``: add frames/face."""

    classes: int = 6
    source: str = "release"
    video: bool = False
    num_frames: int = 8
    frame_size: tuple[int, int] = (112, 112)
    face_size: tuple[int, int] = (64, 64)
    # Frames are decoded at this size for face detection, then resized to frame_size.
    detect_size: tuple[int, int] = (240, 320)


def _release(name: str, classes: int, video: bool) -> IemocapConfig:
    av = " with frames and face crops" if video else ""
    return IemocapConfig(name=name, classes=classes, video=video,
                         description=f"{classes}-class audio + transcript{av} from the release.")


def _read(path: str):
    """:func:`parse.read_text`, a file that is not text a :class:`CorpusError` naming it."""
    from data_prep._common.text import TextDecodeError

    try:
        return parse.read_text(path)
    except TextDecodeError as exc:
        raise CorpusError(str(exc)) from exc


class Iemocap(ReportingMixin, tfds.core.GeneratorBasedBuilder):
    """IEMOCAP utterances with dialogue context; see the module docstring."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "Transcripts decoded per byte run: a non-UTF-8 run is read as cp1252 (was "
                 "U+FFFD), C1 code points mapped to cp1252 punctuation; repairs counted in the "
                 "build report.",
        "1.2.0": "Transcripts read by the shared text decoder: UTF-16 detected, double-encoded "
                 "UTF-8 repaired and counted (mojibake_lines).",
    }
    BUILDER_CONFIGS = [
        _release("4class", 4, False),
        _release("6class", 6, False),
        _release("4class_av", 4, True),
        _release("6class_av", 6, True),
        IemocapConfig(name="text", source="cosmic", classes=6,
                      description="Transcripts, speakers, labels from conv-emotion iemocap.pkl."),
    ]
    DEFAULT_CONFIG_NAME = "4class"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Release configs: request IEMOCAP from https://sail.usc.edu/iemocap/ and pass the unpacked
    IEMOCAP_full_release folder (holding Session1 ... Session5) as --manual_dir.
    Config `text`: pass a folder holding iemocap.pkl from declare-lab/conv-emotion
    (COSMIC/feature-extraction/iemocap/iemocap.pkl) as --manual_dir.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        names = parse.LABELS_4 if cfg.classes == 4 else parse.LABELS_6
        feats = {
            "id": tfds.features.Text(),
            "speaker": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=list(names)),
            "text": tfds.features.Text(),
            "dialogue_id": tfds.features.Text(),
            "turn": F.scalar(np.int32),
        }
        if cfg.source == "release":
            feats["audio"] = F.audio()
            feats["vad"] = tfds.features.Tensor(shape=(3,), dtype=np.float32)
        if cfg.video:
            feats["frames"] = F.frames(*cfg.frame_size)
            feats["face"] = F.frames(*cfg.face_size)
            feats["face_found"] = F.scalar(np.float32)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(feats),
            supervised_keys=None,
            homepage="https://sail.usc.edu/iemocap/",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        root = str(self._manual_root(dl_manager))
        if self.builder_config.source == "cosmic":
            return self._cosmic_splits(root)
        return self._release_splits(root)

    # ---- config `text`: the COSMIC pickle -------------------------------------------------------

    def _cosmic_splits(self, root: str):
        path = os.path.join(root, "iemocap.pkl")
        try:
            splits = parse.read_cosmic(path)
        except FileNotFoundError as exc:
            raise CorpusError(str(exc)) from exc
        self.report.notes["source"] = path
        self.report.notes["dialogues"] = {
            s: len({u.dialogue_id for u in utts}) for s, utts in splits.items()}
        return {s: self._generate_examples(s, utts) for s, utts in splits.items()}

    def _generate_examples(self, split: str, items):
        if self.builder_config.source == "cosmic":
            yield from self._cosmic_examples(split, items)
        else:
            yield from self._release_examples(split, items)

    def _cosmic_examples(self, split: str, utts):
        for u in utts:
            self.report.add(split, parse.LABELS_6[u.label], u.speaker)
            yield u.id, {"id": u.id, "speaker": u.speaker, "label": u.label, "text": u.text,
                         "dialogue_id": u.dialogue_id, "turn": u.turn}

    # ---- release configs ------------------------------------------------------------------------

    def _release_splits(self, root: str):
        cfg = self.builder_config
        names = parse.LABELS_4 if cfg.classes == 4 else parse.LABELS_6
        discarded: collections.Counter = collections.Counter()
        replaced: list[str] = []
        by_split: dict[str, list[tuple]] = {"train": [], "validation": [], "test": []}
        try:
            sessions = parse.find_sessions(root)
        except FileNotFoundError as exc:
            raise CorpusError(str(exc)) from exc
        for _, sdir in sorted(sessions.items()):
            eval_dir = os.path.join(sdir, "dialog", "EmoEvaluation")
            for fname in sorted(os.listdir(eval_dir)):
                if not fname.endswith(".txt") or fname.startswith("."):
                    continue
                dialogue = fname[:-4]
                text, bad = _read(os.path.join(eval_dir, fname))
                utts = parse.parse_emo_evaluation(text, dialogue)
                transcript_path = os.path.join(sdir, "dialog", "transcriptions", fname)
                transcript = {}
                if os.path.isfile(transcript_path):
                    ttext, tbad = _read(transcript_path)
                    transcript = parse.parse_transcription(ttext)
                    if tbad:
                        replaced.append(transcript_path)
                        for kind, n in sorted(tbad.items()):
                            self.report.repair(kind, n, where=transcript_path)
                split = parse.split_of(dialogue)
                kept = []
                for u in utts:
                    label = u.label if cfg.classes == 6 else parse.MERGE_4.get(u.label)
                    if label not in names:
                        discarded[u.label] += 1
                        continue
                    kept.append((u, names.index(label)))
                items = []
                for turn, (u, y) in enumerate(kept):
                    wav = os.path.join(sdir, "sentences", "wav", dialogue, u.turn_name + ".wav")
                    if u.turn_name not in transcript:
                        self.report.skip(transcript_path, f"no transcript line for {u.turn_name}",
                                         split)
                        continue
                    items.append((u, y, turn, transcript[u.turn_name], wav))
                if items:
                    avi = os.path.join(sdir, "dialog", "avi", "DivX", dialogue + ".avi")
                    by_split[split].append((dialogue, avi, items))
        self.report.notes["discarded_labels"] = dict(sorted(discarded.items()))
        self.report.notes["transcripts_repaired"] = replaced
        for split, dialogues in by_split.items():
            if not dialogues:
                raise CorpusError(f"{root}: no {cfg.name} utterances for split {split}")
        return {s: self._generate_examples(s, d) for s, d in by_split.items()}

    def _release_examples(self, split: str, dialogues):
        cfg = self.builder_config
        names = parse.LABELS_4 if cfg.classes == 4 else parse.LABELS_6
        # Each dialogue (its wavs and, for av, its one .avi) is decoded in one of
        # self.num_workers processes; results come back in dialogue order, so the build is the
        # same for any worker count.
        work = [DialogueWork(tuple(it[4] for it in items), avi if cfg.video else None,
                             tuple((u.start, u.end) for u, *_ in items), cfg.num_frames,
                             cfg.detect_size, cfg.face_size, cfg.frame_size)
                for _, avi, items in dialogues]
        results = self._map(dialogue_clips, work, split, unit="dialogue")
        for (dialogue, avi, items), (video_error, clips) in zip(dialogues, results, strict=True):
            if video_error is not None:
                for u, *_ in items:
                    self.report.skip(avi, f"{u.turn_name}: {video_error}", split)
                continue
            for (u, y, turn, text, wav), res in zip(items, clips, strict=True):
                if "error" in res:
                    self.report.skip(wav, res["error"], split)
                    continue
                info = res["info"]
                ex = {"id": u.turn_name, "speaker": u.speaker, "label": y, "text": text,
                      "dialogue_id": dialogue, "turn": turn, "audio": res["audio"],
                      "vad": np.asarray(u.vad, np.float32)}
                extra = {}
                if cfg.video:
                    if res.get("no_frame"):
                        self.report.skip(avi, f"{u.turn_name}: no frame in "
                                              f"[{u.start:.2f}, {u.end:.2f}] s", split)
                        continue
                    ex["face"], ex["face_found"] = res["faces"], res["face_found"]
                    ex["frames"] = res["frames"]
                    extra["face_found"] = ex["face_found"]
                self.report.add(split, names[y], u.speaker, info["duration_s"], info["orig_sr"],
                                path=wav, media=info, **extra)
                yield u.turn_name, ex


