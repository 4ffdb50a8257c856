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
as ``validation``. CSVs are decoded per byte run (UTF-8, a non-UTF-8 run as cp1252) and C1 code
points (U+0080-U+009F, the release's stand-ins for cp1252 punctuation such as U+0092 for ``’``)
are mapped to the cp1252 characters they stand for; every repair is counted per CSV in the build
report (``repairs``, see ``data_prep._common.text``).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common.media import MediaError, crop_faces, read_audio, read_video
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

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "CSV text decoded per byte run (a stray cp1252 byte no longer turns the whole "
                 "file into mojibake); C1 code points mapped to cp1252 punctuation; repairs "
                 "counted in the build report.",
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
        seen = set()
        for row in rows:
            if row.id in seen:
                self.report.skip(csv_path, f"duplicate row {row.id}", split)
                continue
            seen.add(row.id)
            ex = {"id": row.id, "speaker": row.speaker, "label": row.emotion,
                  "sentiment": row.sentiment, "text": row.text, "dialogue_id": row.dialogue_id,
                  "turn": row.utterance}
            duration, orig_sr, extra, info = None, None, {}, {}
            if cfg.video:
                clip = os.path.join(clip_dir, row.clip_name)
                try:
                    audio, info = read_audio(clip)
                    frames, _ = read_video(clip, cfg.num_frames, cfg.detect_size)
                except MediaError as exc:
                    self.report.skip(clip, str(exc), split)
                    continue
                faces, found = crop_faces(frames, cfg.face_size)
                ex.update(audio=audio, frames=_resize(frames, cfg.frame_size), face=faces,
                          face_found=np.float32(found))
                duration, orig_sr = info["duration_s"], info["orig_sr"]
                extra = {"face_found": found}
            self.report.add(split, row.emotion, row.speaker, duration, orig_sr,
                            path=clip if cfg.video else None, media=info, **extra)
            yield row.id, ex


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = size
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
