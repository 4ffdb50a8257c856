"""MELD (Poria et al. 2019): multi-party dialogues from Friends, 7 emotions and 3 sentiments.

Build commands::

  mmer data build meld --config text --manual_dir ~/MELD.Raw --data_dir ~/tfds
  mmer data build meld --config av --manual_dir ~/MELD.Raw --data_dir ~/tfds

``--manual_dir`` holds ``{train,dev,test}_sent_emo.csv`` and, for ``av``, the clip folders as
released (``train_splits/``, ``dev_splits_complete/``, ``output_repeated_splits_test/``) or renamed
``train/``, ``dev/``, ``test/``; both may sit one or two folders down (``MELD.Raw/``,
``train/train_splits/``).

Configs:
  * ``text``: the CSVs only (9,989 / 1,109 / 2,610 utterances on the real release).
  * ``av``: adds ``audio`` (16 kHz), ``frames``, ``face`` and ``face_found`` decoded from
    ``dia<D>_utt<U>.mp4``. A missing clip (the release lacks dev ``dia110_utt7``) or an undecodable
    one is skipped, logged and counted in the build report.

Fields: ``id`` (``<train|dev|test>_dia<D>_utt<U>``: MELD restarts dialogue numbers in every split,
so the split prefix makes ids unique), ``dialogue_id`` (``<split>_dia<D>``), ``turn``
(Utterance_ID), ``speaker`` (character name), ``text``, ``label`` (neutral surprise fear sadness joy
disgust anger), ``sentiment`` (neutral positive negative, MELD's own numbering). ``dev`` is stored
as ``validation``. CSVs are read by the project's text decoder (``data_prep._common.text``: a
BOM or UTF-16 detected, UTF-8 per byte run with a non-UTF-8 run as cp1252, C1 code points such as
the release's U+0092 for ``’`` mapped to cp1252 punctuation, double-encoded UTF-8 repaired); every
repair is counted per CSV in the build report (``repairs``).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common.clips import AVItem, av_clip
from data_prep._common.parallel import Failed
from data_prep._common.report import CorpusError, ReportingMixin
from data_prep.meld import parse

_CITATION = """@inproceedings{poria2019meld,
  title={MELD: A Multimodal Multi-Party Dataset for Emotion Recognition in Conversations},
  author={Poria, Soujanya and Hazarika, Devamanyu and Majumder, Navonil and Naik, Gautam and
          Cambria, Erik and Mihalcea, Rada}, booktitle={ACL}, pages={527--536}, year={2019}}"""


@dataclasses.dataclass
class MeldConfig(tfds.core.BuilderConfig):
    """``video``: decode the clips (audio, frames, faces); otherwise the CSVs only."""

    video: bool = False
    num_frames: int = 8
    frame_size: tuple[int, int] = (112, 112)
    face_size: tuple[int, int] = (64, 64)
    # Decoded at 16:9 (the clips are 1280x720) for face detection, then resized to frame_size.
    detect_size: tuple[int, int] = (180, 320)


class Meld(ReportingMixin, tfds.core.GeneratorBasedBuilder):
    """MELD utterances with dialogue context; see the module docstring."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "CSV text decoded per byte run (a stray cp1252 byte no longer turns the whole "
                 "file into mojibake); C1 code points mapped to cp1252 punctuation; repairs "
                 "counted in the build report.",
        "1.2.0": "CSVs saved as UTF-16 read; double-encoded UTF-8 (donâ€™t) repaired and "
                 "counted (mojibake_lines).",
    }
    BUILDER_CONFIGS = [
        MeldConfig(name="text", video=False, description="Transcripts and labels from the CSVs."),
        MeldConfig(name="av", video=True, description="Transcripts, audio, frames and face crops."),
    ]
    DEFAULT_CONFIG_NAME = "text"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download MELD.Raw.tar.gz from https://affective-meld.github.io/ (or the declare-lab/MELD
    README), unpack it and the train/dev/test archives inside, and pass the MELD.Raw folder as
    --manual_dir. The `text` config needs only the three *_sent_emo.csv files.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        feats = {
            "id": tfds.features.Text(),
            "speaker": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=list(parse.EMOTIONS)),
            "sentiment": tfds.features.ClassLabel(names=list(parse.SENTIMENTS)),
            "text": tfds.features.Text(),
            "dialogue_id": tfds.features.Text(),
            "turn": F.scalar(np.int32),
        }
        if cfg.video:
            feats["audio"] = F.audio()
            feats["frames"] = F.frames(*cfg.frame_size)
            feats["face"] = F.frames(*cfg.face_size)
            feats["face_found"] = F.scalar(np.float32)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(feats),
            supervised_keys=None,
            homepage="https://affective-meld.github.io/",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        root = str(self._manual_root(dl_manager))
        out = {}
        for split, (prefix, clip_dirs) in parse.SPLITS.items():
            csv_name = f"{prefix}_sent_emo.csv"
            csv_path = parse.find(root, (csv_name,), want_dir=False)
            if csv_path is None:
                raise CorpusError(f"{root}: {csv_name} not found (here or two folders below)")
            try:
                rows, bad, repairs = parse.read_rows(csv_path, prefix)
            except ValueError as exc:
                raise CorpusError(str(exc)) from exc
            for kind, n in sorted(repairs.items()):
                self.report.repair(kind, n, where=csv_name)
            for line, reason in bad:
                self.report.skip(f"{csv_path}:{line}", reason, split)
            clip_dir = None
            if self.builder_config.video:
                clip_dir = parse.find(root, clip_dirs, want_dir=True)
                if clip_dir is None:
                    raise CorpusError(f"{root}: no {split} clip folder (one of {clip_dirs})")
            out[split] = self._generate_examples(split, rows, clip_dir, csv_path)
        return out

    def _generate_examples(self, split: str, rows, clip_dir: str | None, csv_path: str):
        cfg = self.builder_config
        first: dict[str, int] = {}  # id -> index of its first row (later rows are duplicates)
        for i, row in enumerate(rows):
            first.setdefault(row.id, i)
        results = iter(())
        if cfg.video:
            # Decoding, resampling and face detection run in self.num_workers processes; the
            # results come back in row order, so the build is the same for any worker count.
            work = [AVItem(os.path.join(clip_dir, row.clip_name),
                           os.path.join(clip_dir, row.clip_name), cfg.num_frames, cfg.frame_size,
                           cfg.face_size, cfg.detect_size)
                    for i, row in enumerate(rows) if first[row.id] == i]
            results = self._map(av_clip, work, split)
        for i, row in enumerate(rows):
            if first[row.id] != i:
                self.report.skip(csv_path, f"duplicate row {row.id}", split)
                continue
            ex = {"id": row.id, "speaker": row.speaker, "label": row.emotion,
                  "sentiment": row.sentiment, "text": row.text, "dialogue_id": row.dialogue_id,
                  "turn": row.utterance}
            duration, orig_sr, extra, info, clip = None, None, {}, {}, None
            if cfg.video:
                clip = os.path.join(clip_dir, row.clip_name)
                res = next(results)
                if isinstance(res, Failed):
                    self.report.skip(clip, res.reason, split)
                    continue
                info = res.info
                ex.update(audio=res.audio, frames=res.frames, face=res.faces,
                          face_found=np.float32(res.face_found))
                duration, orig_sr = info["duration_s"], info["orig_sr"]
                extra = {"face_found": res.face_found}
            self.report.add(split, row.emotion, row.speaker, duration, orig_sr,
                            path=clip, media=info, **extra)
            yield row.id, ex
        next(results, None)  # lets the worker map finish (closes its progress bar)
