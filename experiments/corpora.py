"""Corpus protocols shared by the experiment configs: which corpus, which split, where it lives.

Corpora that cannot be generated are read from ``data.manual_dir``: set it on the command line
(``--config.data.manual_dir=/path/to/emodb``), or set ``MMER_DATA_ROOT`` to a folder holding one
sub-folder per corpus (``emodb/``, ``iemocap_text/``, ``ravdess/``, ``crema_d/``, ``meld/``), or the
corpus's own variable (``MMER_EMODB``, ``MMER_IEMOCAP_TEXT``, ...), which wins.
"""

from __future__ import annotations

import os

import ml_collections


def manual_dir(folder: str, env_var: str) -> str:
    """The corpus folder from ``env_var``, else ``$MMER_DATA_ROOT/<folder>``, else "" (the build
    then stops with an error naming ``data.manual_dir``)."""
    if os.environ.get(env_var):
        return os.path.expanduser(os.environ[env_var])
    root = os.environ.get("MMER_DATA_ROOT")
    return os.path.join(os.path.expanduser(root), folder) if root else ""


def generated(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The generated corpus (speaker-independent 1200/200/200) with short clips and small
    batches."""
    cfg.data.corpus = "generated_emotion"
    cfg.data.max_audio_s = 1.5
    cfg.data.max_frames = 10
    cfg.data.max_tokens = 16
    cfg.train.epochs = 8
    cfg.train.batch_size = 16
    return cfg


def generated_faces(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The generated corpus's video stream only (its frames are face crops already): the single
    ``video`` variant of a face system."""
    cfg = generated(cfg)
    cfg.variants = ml_collections.ConfigDict(dict(video=["frames"]))
    cfg.primary_variant = "video"
    cfg.model.modalities = ["frames"]
    return cfg


def emodb_speech(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """EmoDB speech only, speaker-independent fixed split (6/2/2 speakers)."""
    cfg.variants = ml_collections.ConfigDict(dict(audio=["audio"]))
    cfg.primary_variant = "audio"
    cfg.data.corpus = "emodb"
    cfg.data.manual_dir = manual_dir("emodb", "MMER_EMODB")
    cfg.model.modalities = ["audio"]
    cfg.train.epochs = 30
    cfg.train.batch_size = 16
    cfg.train.weight_decay = 1e-3
    # No protocol.split: the run derives it from the builder config and the speakers it reads
    # (a declaration would go stale under --config.data.config=lso_fold3).
    return cfg


def turev_db_speech(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """TurEV-DB speech only (the ``folder`` builder's ``turev_db`` layout): single words, so
    clips are read up to 2 s."""
    cfg.variants = ml_collections.ConfigDict(dict(audio=["audio"]))
    cfg.primary_variant = "audio"
    cfg.data.corpus = "folder"
    cfg.data.config = "turev_db"
    cfg.data.manual_dir = manual_dir("turev_db", "MMER_TUREV_DB")
    cfg.data.max_audio_s = 2.0  # single words
    return cfg


def iemocap_text_dialogues(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """IEMOCAP transcripts (6 classes) as whole dialogues, COSMIC's lists: 108/12 train/validation
    dialogues of sessions 1-4, 31 test dialogues of session 5; text only."""
    cfg.variants = ml_collections.ConfigDict(dict(text=["text"]))
    cfg.primary_variant = "text"
    cfg.data.corpus = "iemocap"
    cfg.data.config = "text"
    cfg.data.manual_dir = manual_dir("iemocap_text", "MMER_IEMOCAP_TEXT")
    cfg.data.unit = "dialogue"
    cfg.data.max_utterances = 112  # IEMOCAP's longest dialogue has 110 turns: no chunking
    cfg.data.utterance_bucket = 56  # two shapes (56, 112): few compilations
    cfg.data.token_bucket = 24  # two shapes (24, 48); longer utterances (<1 %) keep 48 words
    cfg.data.read_threads = 0  # ~150 small dialogues; decoded once and cached
    cfg.model.modalities = ["text"]
    cfg.protocol.split = (
        "IEMOCAP 6-class, COSMIC dialogue lists: sessions 1-4 108/12 "
        "train/validation dialogues, session 5 test (31 dialogues)"
    )
    cfg.protocol.measure_speakers = False  # stored speaker ids are M/F, not actors
    return cfg


def face_video(cfg: ml_collections.ConfigDict, corpus: str, env_var: str):
    """An audio-visual corpus's ``av`` builder config, 4 s of audio and 16 frames per clip."""
    cfg.data.corpus = corpus
    cfg.data.config = "av"
    cfg.data.manual_dir = manual_dir(corpus, env_var)
    cfg.data.max_frames = 16
    return cfg
