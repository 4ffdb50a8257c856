"""Corpus protocols shared by the experiment configs: which corpus, which split, where it lives.

Corpora that cannot be generated are read from ``data.manual_dir``: set it on the command line
(``--config.data.manual_dir=/path/to/emodb``), or set ``MMER_DATA_ROOT`` to a folder holding one
sub-folder per corpus (``emodb/``, ``iemocap_text/``, ``ravdess/``, ``crema_d/``, ``meld/``,
``cmu_mosi/``, ``cmu_mosei/``), or the corpus's own variable (``MMER_EMODB``,
``MMER_IEMOCAP_TEXT``, ``MMER_CMU_MOSI``, ...), which wins.
"""

from __future__ import annotations

import os

import ml_collections

from mmer_jax.data.batching import STORED_STREAMS  # the MOSI/MOSEI feature-stream modalities


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


def generated_speech(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The generated corpus's audio only: the single ``audio`` variant of a speech system."""
    cfg = generated(cfg)
    cfg.variants = ml_collections.ConfigDict(dict(audio=["audio"]))
    cfg.primary_variant = "audio"
    cfg.model.modalities = ["audio"]
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


def encoder_features(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The single ``encoder`` variant reading a pretrained encoder's cached layers
    (``encoder_feat``, from ``data.encoder``) instead of the corpus's audio."""
    cfg.variants = ml_collections.ConfigDict(dict(encoder=["encoder_feat"]))
    cfg.primary_variant = "encoder"
    cfg.model.modalities = ["encoder_feat"]
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


def _sentiment_streams(cfg: ml_collections.ConfigDict, corpus: str, env_var: str):
    """The shared protocol of CMU-MOSI and CMU-MOSEI (MMSA's): the word-aligned release (T = 50),
    the standard train/valid/test folds stored by the builder, the sentiment score in [-3, 3] as a
    regression target with L1 loss, model selection on validation MAE, the three feature
    streams."""
    cfg.data.corpus = corpus
    cfg.data.config = "aligned"
    cfg.data.manual_dir = manual_dir(corpus, env_var)
    cfg.data.max_feat_steps = 64  # aligned sequences have 50 steps: read whole
    cfg.data.read_threads = 0  # small float records, decoded once and cached
    cfg.model.modalities = list(STORED_STREAMS)
    cfg.variants = ml_collections.ConfigDict(dict(fused=list(STORED_STREAMS)))
    cfg.primary_variant = "fused"
    cfg.protocol.task = "regression"
    cfg.protocol.regression_loss = "l1"
    cfg.train.select_metric = "mae"
    # No protocol.split: the run describes the splits it reads (examples per split); the pickles
    # store no speaker ids, so speaker independence cannot be measured.
    return cfg


def cmu_mosi(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """CMU-MOSI, aligned feature pickles (MulT ``mosi_data.pkl`` or MMSA ``aligned_50.pkl``),
    standard folds (52/10/31 videos, 1,284/229/686 segments), sentiment regression."""
    cfg = _sentiment_streams(cfg, "cmu_mosi", "MMER_CMU_MOSI")
    cfg.train.epochs = 30
    cfg.train.batch_size = 32
    return cfg


def cmu_mosei(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """CMU-MOSEI, aligned feature pickles (MulT ``mosei_senti_data.pkl`` or MMSA
    ``aligned_50.pkl``), standard folds (2,249/300/678 videos), sentiment regression."""
    cfg = _sentiment_streams(cfg, "cmu_mosei", "MMER_CMU_MOSEI")
    cfg.train.epochs = 15
    cfg.train.batch_size = 64
    return cfg


def meld_dialogues(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """MELD transcripts (7 emotions, the ``text`` builder config) as whole dialogues, the official
    train/dev/test split; text only. The Friends cast speaks in every split, so the split is not
    speaker-independent (the run measures the overlap)."""
    cfg.variants = ml_collections.ConfigDict(dict(text=["text"]))
    cfg.primary_variant = "text"
    cfg.data.corpus = "meld"
    cfg.data.config = "text"
    cfg.data.manual_dir = manual_dir("meld", "MMER_MELD")
    cfg.data.unit = "dialogue"
    cfg.data.max_utterances = 40  # a longer dialogue is split into chunks
    cfg.data.utterance_bucket = 8
    cfg.data.token_bucket = 16
    cfg.data.read_threads = 0  # ~1,400 small dialogues; decoded once and cached
    cfg.model.modalities = ["text"]
    cfg.protocol.split = "MELD official train/dev/test dialogues (1,039/114/280)"
    cfg.protocol.speaker_independent = False
    return cfg


# A sentiment score per emotion class of the generated corpus (CMU-MOSI's scale, [-3, 3]): the
# classes' valence, so each modality's confused pair (neutral/sad, happy/surprised,
# angry/fearful; frames/text pair others) is also a pair of nearby or distant scores.
GENERATED_SENTIMENT = {"neutral": 0.0, "happy": 2.0, "sad": -2.0, "angry": -2.5,
                       "fearful": -1.5, "surprised": 1.0}


def generated_sentiment(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A generated-corpus config (:func:`generated` already applied, e.g. a system's
    ``<system>_generated`` config) turned into a sentiment-regression one: MMSA's protocol on
    synthetic scores (``GENERATED_SENTIMENT`` per class, L1 loss, selection on validation MAE),
    all three modalities fused; the budget and model are the config's."""
    cfg.protocol.task = "regression"
    cfg.protocol.regression_loss = "l1"
    cfg.train.select_metric = "mae"
    cfg.data.class_scores = list(GENERATED_SENTIMENT.values())  # in the corpus's class order
    cfg.variants = ml_collections.ConfigDict(dict(fused=["frames", "audio", "text"]))
    cfg.primary_variant = "fused"
    cfg.model.modalities = ["frames", "audio", "text"]
    return cfg
