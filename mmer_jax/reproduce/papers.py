"""Reported numbers of the seed papers (S001-S003) and the published/measured references.

Every entry names its source: a seed paper (``shared/papers/S00x_*.txt``, with table or figure)
or ``shared/ANCHORS.md`` (section). Values are percentages. Where a paper's numbers disagree with
each other the entry says so in ``note``; :func:`confusion_metrics` recomputes metrics from the
confusion matrices printed in the papers so such checks are reproducible (see
``tests/reproduce/test_papers.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Result:
    """One reported result.

    Attributes:
      system: registry name where we have the model (``s001``, ``s002``, ``text_cnn``, ...),
        otherwise the paper's name for it.
      corpus: corpus and class set.
      protocol: split / speaker setting / model selection, as far as the source states it.
      metrics: metric name -> value in percent ("acc", "wf1", ...).
      source: where the number comes from.
      note: caveats (inconsistencies, missing details).
    """

    system: str
    corpus: str
    protocol: str
    metrics: Mapping[str, float]
    source: str
    note: str = ""


# ---------------------------------------------------------------------------------- S001
RAVDESS_S001_CLASSES = ("neutral", "happy", "sad", "angry", "fearful", "surprised")
_S001 = "S001 (papers/S001_fusion_resnet_lstm_ravdess.txt)"
_S001_PROTOCOL = "RAVDESS speech audio-video, 1,440 clips; split and class set not stated"
_S001_CM_NOTE = (
    "the printed confusion matrix (6 classes, about 250 clips) gives a lower accuracy than the "
    "caption; the text elsewhere reports {other}"
)

# Rows = true class, columns = predicted, order RAVDESS_S001_CLASSES (Figs. 5-7).
S001_CONFUSION = {
    "video": [
        [14, 21, 2, 1, 2, 2],
        [4, 8, 0, 1, 0, 20],
        [4, 2, 14, 3, 7, 7],
        [0, 1, 1, 15, 14, 4],
        [0, 1, 2, 6, 10, 15],
        [4, 1, 5, 2, 19, 30],
    ],
    "audio": [
        [17, 18, 2, 1, 2, 2],
        [20, 12, 0, 0, 0, 1],
        [5, 1, 14, 3, 7, 7],
        [1, 0, 1, 15, 14, 4],
        [0, 0, 3, 6, 18, 7],
        [4, 1, 5, 2, 9, 49],
    ],
    "fused": [
        [31, 2, 4, 2, 1, 2],
        [3, 32, 0, 0, 0, 1],
        [5, 1, 14, 3, 7, 7],
        [1, 0, 2, 28, 2, 4],
        [0, 0, 6, 3, 18, 7],
        [3, 1, 6, 5, 6, 49],
    ],
}

S001_RESULTS = (
    Result(
        "s001",
        "RAVDESS speech (audio only)",
        _S001_PROTOCOL,
        {"acc": 79.76},
        f"{_S001}, Fig. 6 caption (ResNet-18 on MFCC)",
        _S001_CM_NOTE.format(other="64.6 % for ResNet-18 speech (Sec. VI.C)"),
    ),
    Result(
        "s001",
        "RAVDESS speech (video only)",
        _S001_PROTOCOL,
        {"acc": 73.84},
        f"{_S001}, Fig. 5 caption (ResNet-34 per frame + LSTM)",
        _S001_CM_NOTE.format(other="45.6 % for ResNet-34 facial recognition (Sec. VI.B)"),
    ),
    Result(
        "s001",
        "RAVDESS speech (audio + video)",
        _S001_PROTOCOL,
        {"acc": 85.02},
        f"{_S001}, Fig. 7 caption",
        _S001_CM_NOTE.format(other="77.99 % as the fused result (Table I, conclusion)"),
    ),
)

# Table I: fused audio-video accuracy and training time (s) by video backbone and dropout.
S001_TABLE1 = {
    ("ResNet18+VGG16", 0.3): (70.83, 73.04),
    ("ResNet18+VGG16", 0.5): (71.98, 49.08),
    ("ResNet18+SqueezeNet", 0.3): (70.73, 36.52),
    ("ResNet18+SqueezeNet", 0.5): (70.80, 35.94),
    ("ResNet18+ResNet34 (proposed)", 0.3): (72.17, 32.44),
    ("ResNet18+ResNet34 (proposed)", 0.5): (77.99, 28.54),
}
S001_RESULTS += tuple(
    Result(
        "s001" if "proposed" in name else name,
        "RAVDESS speech (audio + video)",
        _S001_PROTOCOL + f"; dropout {p}",
        {"acc": acc, "time_s": secs},
        f"{_S001}, Table I",
    )
    for (name, p), (acc, secs) in S001_TABLE1.items()
)

# ---------------------------------------------------------------------------------- S002
IEMOCAP_CLASSES = ("happy", "sad", "neutral", "angry", "excited", "frustrated")
IEMOCAP_TEST_SUPPORT = (144, 245, 384, 170, 299, 381)  # session 5: row sums of Fig. 2 (1,623)
_S002 = "S002 (papers/S002_bilstm_mha_residual_iemocap.txt)"
_IEMOCAP_PROTOCOL = (
    "IEMOCAP 6-class, sessions 1-4 train/val (5,320/490 utts, 108/12 dialogues), session 5 test "
    "(1,623 utts, 31 dialogues); model selection not stated"
)
S002_TRAINING = {
    "optimizer": "adam",
    "learning_rate": 3e-4,
    "weight_decay": 5e-5,
    "batch_size": 32,
    "epochs": 60,
}

# Table 2, per class (acc, F1) in IEMOCAP_CLASSES order, then the averages. The per-class "Acc"
# of the proposed model equals the column-wise precision of the Fig. 2 confusion matrix.
S002_TABLE2 = {
    "text_cnn": ([(27.7, 29.8), (57.1, 53.8), (34.3, 40.1), (61.1, 52.4), (46.1, 50.0),
                  (62.9, 55.7)], (48.9, 48.1)),
    "bc_lstm": ([(29.1, 34.4), (57.1, 60.8), (54.1, 51.8), (57.0, 56.7), (51.1, 57.9),
                 (67.1, 58.9)], (55.2, 54.9)),
    "cmn": ([(25.0, 30.3), (55.9, 62.4), (52.8, 52.3), (61.7, 59.8), (55.5, 60.2),
             (71.1, 60.6)], (56.5, 56.1)),
    "s002": ([(45.3, 36.0), (75.7, 77.8), (53.9, 57.3), (61.1, 62.9), (65.7, 70.6),
              (62.1, 55.3)], (61.7, 61.0)),
}  # fmt: skip

# Fig. 2: rows = true class, columns = predicted, IEMOCAP_CLASSES order.
S002_CONFUSION = [
    [43, 7, 19, 2, 70, 3],
    [7, 196, 21, 3, 1, 17],
    [18, 24, 235, 15, 40, 52],
    [0, 2, 16, 110, 0, 42],
    [26, 15, 28, 0, 228, 2],
    [1, 15, 117, 50, 8, 190],
]

S002_RESULTS = tuple(
    Result(
        name,
        "IEMOCAP 6-class (text + audio + visual for s002; baselines as reported there)",
        _IEMOCAP_PROTOCOL,
        {
            "acc": avg[0],
            "wf1": avg[1],
            **{f"{c}_acc": a for c, (a, _) in zip(IEMOCAP_CLASSES, rows, strict=True)},
            **{f"{c}_f1": f for c, (_, f) in zip(IEMOCAP_CLASSES, rows, strict=True)},
        },
        f"{_S002}, Table 2",
        "per-class 'Acc' is precision (matches Fig. 2 columns); the averages are weighted by "
        "class support"
        + ("; the paper prints CMN frustrated acc as '71. 1'" if name == "cmn" else ""),
    )
    for name, (rows, avg) in S002_TABLE2.items()
)

# ------------------------------------------------------------------------- S003 and references
_ANCHORS = "shared/ANCHORS.md"
OTHER_RESULTS = (
    Result(
        "s003",
        "MELD 7-class (CREMA-D planned)",
        "interim report; trained on a small subset only",
        {},
        "S003 (papers/S003_lightweight_realtime_meld.txt), Sec. 3.1",
        "no final numbers; the goal is a small real-time model",
    ),
    Result(
        "tfidf_logreg",
        "IEMOCAP text 6-class",
        "108/12/31 dialogue split, single utterances, hyperparameters on validation",
        {"acc": 53.4, "wf1": 52.9},
        f"{_ANCHORS} §2 (floors measured on shared/data)",
    ),
    Result(
        "tfidf_logreg_context",
        "IEMOCAP text 6-class",
        "108/12/31 split, previous and next utterance appended, hyperparameters on validation",
        {"acc": 58.0, "wf1": 57.9},
        f"{_ANCHORS} §2 (floors measured on shared/data)",
        "a neural text model below 57.9 weighted F1 is not yet working",
    ),
)
_PUBLISHED_IEMOCAP = {
    "TextCNN": (49.35, 49.21),
    "bc-LSTM+Att": (56.32, 56.19),
    "DialogueRNN": (63.03, 62.50),
    "DialogueGCN": (64.02, 63.65),
    "DialogueCRN": (66.73, 66.66),
    "MM-DFN": (68.21, 68.18),
}
_PUBLISHED_MELD = {
    "bc-LSTM+Att": (57.50, 55.90),
    "DialogueRNN": (59.54, 56.39),
    "DialogueGCN": (59.46, 56.77),
    "DialogueCRN": (61.26, 58.48),
    "MM-DFN": (62.49, 59.46),
}
OTHER_RESULTS += tuple(
    Result(
        name,
        corpus,
        protocol,
        {"acc": acc, "wf1": wf1},
        f"{_ANCHORS} §2",
        "most of these scripts select the epoch on the test set",
    )
    for corpus, protocol, table in (
        ("IEMOCAP 6-class", "120/31 dialogues, session 5 test", _PUBLISHED_IEMOCAP),
        ("MELD 7-class", "official train/dev/test", _PUBLISHED_MELD),
    )
    for name, (acc, wf1) in table.items()
)
OTHER_RESULTS += (
    Result("COSMIC", "IEMOCAP 6-class", "108/12/31 split", {"wf1": 65.28}, f"{_ANCHORS} §2"),
    Result("COSMIC", "MELD 7-class", "official split", {"wf1": 65.21}, f"{_ANCHORS} §2"),
    Result(
        "Whisper-large-v3",
        "RAVDESS speech (audio)",
        "EmoBox, speaker-independent, 6 folds of 4 held-out actors",
        {"ua": 75.32, "wa": 75.87, "f1": 75.19},
        f"{_ANCHORS} §2",
    ),
    Result(
        "late fusion",
        "RAVDESS audio-visual",
        "5-fold by subject",
        {"acc": 80.08},
        f"{_ANCHORS} §2",
        "the same model scores 95.83 on a random split, 48.06 ± 9.76 leave-one-speaker-out",
    ),
)

# ---------------------------------------------------------------------------------- S000
S000_RESULTS = (
    Result(
        "crnn_ma",
        "IEMOCAP speech, 4 classes (5,531 utterances)",
        "session-independent 5-fold cross-validation",
        {"uar": 60.2},
        "S000 (papers/S000_survey_multimodal_emotion_recognition.txt), §2.3, Table 2",
        "the table prints the method as 'CENN-MA' in this row; CRNN 59.0, ACNN 59.5",
    ),
    Result(
        "crnn_ma",
        "IEMOCAP speech, 4 classes (5,531 utterances)",
        "last session held out as the test set",
        {"uar": 60.6},
        "S000 (papers/S000_survey_multimodal_emotion_recognition.txt), §2.3, Table 2",
        "CRNN 59.2, STC 60.4",
    ),
    Result(
        "survey_text",
        "ISEAR (class set not stated)",
        "split and model selection not stated",
        {"acc": 80.25, "precision": 99.50, "recall": 79.99, "f1": 88.86},
        "S000 (papers/S000_survey_multimodal_emotion_recognition.txt), §2.1, Table 1",
        "the survey's summary of Goyal et al.'s Word2Vec + K-means + TF-IDF system; precision, "
        "recall and F1 read as binary (negative-emotion) scores",
    ),
)

# S000 §3: the surveyed fusion networks. MAE and Corr are printed x100 in Tables 3-4 (56.8 =
# 0.568); they are stored as printed, in percent like every other value here.
_S000_SEC3 = "S000 (papers/S000_survey_multimodal_emotion_recognition.txt), §3"
S000_FUSION_RESULTS = (
    Result(
        "mi",
        "CMU-MOSEI sentiment (regression, Acc-2 / Acc-7 views)",
        "standard split as the survey reports it; Acc-2 variant (has-0 / non-0) not stated",
        {"acc2": 83.5, "acc7": 52.8, "f1": 83.1, "mae": 56.8, "corr": 71.2},
        f"{_S000_SEC3}.1, Table 3",
        "MAE and Corr printed x100 (0.568, 0.712); IEMOCAP accuracy 83.9 in the text, class "
        "set not stated",
    ),
    Result(
        "mi",
        "IEMOCAP (class set not stated)",
        "split and selection not stated",
        {"acc": 83.9},
        f"{_S000_SEC3}.1 (text below Table 3)",
        "an accuracy this high is typical of 4-class or per-emotion binary protocols, not of 6 "
        "classes",
    ),
    Result(
        "tsra",
        "GMSA (game-scene multimodal sentiment, regression)",
        "split and selection not stated",
        {"acc2": 80.5, "acc3": 66.3, "acc5": 40.98, "f1": 80.86, "mae": 43.28, "corr": 59.82},
        f"{_S000_SEC3}.2, Table 4",
        "MAE and Corr printed x100; TFN 79.78 / LMF 69.37 Acc-2 on the same table",
    ),
    Result(
        "mgmnet",
        "IEMOCAP 6-class (dialogues)",
        "split and selection not stated",
        {"wf1": 72.33, "f1_happy": 65.22, "f1_sad": 79.75, "f1_neutral": 71.20,
         "f1_angry": 66.07, "f1_excited": 80.25, "f1_frustrated": 67.96},
        f"{_S000_SEC3}.3, Table 5",
        "text + audio + video with pretrained features",
    ),
    Result(
        "mgmnet",
        "MELD 7-class (dialogues)",
        "official split as far as stated",
        {"wf1": 66.95},
        f"{_S000_SEC3}.3, Table 5",
    ),
)

# Systems whose paper reports only a corpus we do not run: the report says so beside "paper
# numbers unavailable", so the other corpus's figure is read as context, not as a target.
OTHER_CORPUS_NOTES: Dict[str, str] = {
    "survey_text": "S000 §2.1 (Table 1) reports accuracy 80.25 on ISEAR, a different corpus "
    "(class set, split and selection not stated): not comparable with a corpus run here",
}

OTHER_CORPUS_NOTES["crnn_ma"] = (
    "S000 §2.3 (Table 2) reports unweighted accuracy 60.2 (5-fold CV) and 60.6 (last session "
    "held out) on IEMOCAP speech, 4 classes: a corpus whose audio is not held here, not "
    "comparable"
)

# ------------------------------------------------------------------ face systems (S000, S004)
_S000_FILE = "S000 (papers/S000_survey_multimodal_emotion_recognition.txt)"
_S004_FILE = "S004 (papers/S004_cnnlstm_irv2_chi2_svm_mosi_meld.txt)"
# Table 2: accuracy of the features read from each layer of Inception-ResNet-v2, by our tap name
# (mmer_jax.models.encoders.inception_resnet_v2.TAPS).
S004_TABLE2 = {"conv": 66.09, "avgpool": 63.84, "dropout": 79.18, "fc": 85.75}
FACE_RESULTS = (
    Result(
        "vgg16_face",
        "own humanoid-robot camera face images (facial emotion)",
        "Dwijayanti et al. (S000 ref. [6]); classes, split and selection not stated in the survey",
        {"acc": 73.0},
        f"{_S000_FILE}, §2.2",
        "VGG16 is 'Model B'; Model C 67 %; not a public corpus, so no like-for-like comparison",
    ),
) + tuple(
    Result(
        "s004_face",
        f"CMU-MOSI / MELD video faces ({tap} features; which corpus is not stated)",
        "features of one Inception-ResNet-v2 layer classified; split and classifier not stated",
        {"acc": acc},
        f"{_S004_FILE}, Table 2",
        "S004 keeps the fully connected layer's features" if tap == "fc" else "",
    )
    for tap, acc in S004_TABLE2.items()
)

OTHER_CORPUS_NOTES["vgg16_face"] = (
    "S000 §2.2 reports 73 % facial-emotion accuracy for VGG16 on its cited authors' own "
    "robot-camera images (classes, split and selection not stated): not comparable"
)
OTHER_CORPUS_NOTES["mi"] = (
    "S000 §3.1 reports CMU-MOSEI (Acc-2 83.5, Acc-7 52.8, MAE 0.568, Corr 0.712) and IEMOCAP "
    "accuracy 83.9 with pretrained features; CMU-MOSEI is not held here: not comparable"
)
OTHER_CORPUS_NOTES["tsra"] = (
    "S000 §3.2 reports GMSA, a game-scene corpus not publicly available (Acc-2 80.5, MAE 0.4328, "
    "Corr 0.5982): not comparable"
)
OTHER_CORPUS_NOTES["mgmnet"] = (
    "S000 §3.3 reports IEMOCAP 6-class weighted F1 72.33 and MELD 66.95 with text, audio and "
    "video and pretrained features: not comparable with a corpus or modality set run here"
)
OTHER_CORPUS_NOTES["s004_face"] = (
    "S004 Table 2 reports 85.75 % from the fully connected layer's features (convolution 66.09, "
    "average pool 63.84, dropout 79.18) on CMU-MOSI / MELD faces, without saying which corpus or "
    "how each layer's features were classified: context, not a target"
)
OTHER_CORPUS_NOTES["s004_speech"] = (
    "S004 reports its speech branch only as a per-emotion average accuracy of 83.72 % (Table 3, "
    "corpus not stated) and CMU-MOSI (binary polarity) / MELD only for its fused speech + face "
    "system (87.56 / 90.06 %, Fig. 9): context, not a target for the speech network alone"
)

# ------------------------------------------------------- pretrained speech encoders (speech)
# EmoBox's published speech figures (unweighted accuracy = UAR, weighted accuracy = accuracy, F1
# as EmoBox reports it: macro F1) and the frozen Whisper-base probe and classical floors measured
# for this project; ``*_std`` is the standard deviation over folds where the source gives one.
_ANCHORS_PROBE = f"{_ANCHORS} §2 (pretrained encoders: a frozen one, probe 2026-12-07)"
_ANCHORS_FLOORS = f"{_ANCHORS} §2 (floors measured on shared/data)"
_EMOBOX_EMODB = ("EmoBox's 5 EmoDB folds (speakers overlap between train and test), the corpus "
                 "as EmoBox prepares it")
PRETRAINED_SPEECH_RESULTS = (
    Result("wavlm_large_emobox", "EmoDB 7-class", _EMOBOX_EMODB,
           {"ua": 92.58, "wa": 92.67, "f1": 92.57}, f"{_ANCHORS} §2 (EmoBox benchmark)"),
    Result("wav2vec2_base_emobox", "EmoDB 7-class", _EMOBOX_EMODB,
           {"ua": 82.06, "wa": 83.14, "f1": 82.21}, f"{_ANCHORS} §2 (EmoBox benchmark)"),
    Result("whisper_base_last_layer_logreg", "EmoDB 7-class (this project's copy)",
           "5 leave-two-speakers-out folds (speakers paired in sorted order); C chosen on "
           "speaker-grouped inner folds of the training speakers; no speaker normalisation",
           {"ua": 73.2, "ua_std": 3.3}, _ANCHORS_PROBE,
           "per fold 79.0, 71.1, 71.3, 71.4, 73.0"),
    Result("whisper_base_last_layer_logreg", "TurEV-DB 4-class",
           "6 leave-one-speaker-out folds; C chosen on speaker-grouped inner folds of the "
           "training speakers; no speaker normalisation",
           {"ua": 51.5, "ua_std": 4.9}, _ANCHORS_PROBE,
           "under the classical floor: the last layer of an ASR encoder carries little "
           "paralinguistic information"),
    Result("utterance_stats_classical", "EmoDB 7-class (this 2-s, 22 kHz copy)",
           "5 leave-two-speakers-out folds (speakers paired in sorted order); hyperparameters "
           "on validation only", {"ua": 58.6, "ua_std": 3.5}, _ANCHORS_FLOORS),
    Result("utterance_stats_classical", "EmoDB 7-class (this 2-s, 22 kHz copy)",
           "EmoBox folds (speakers overlap); hyperparameters on validation only",
           {"ua": 76.7, "ua_std": 3.5}, _ANCHORS_FLOORS),
    Result("utterance_stats_classical", "TurEV-DB 4-class",
           "6 leave-one-speaker-out folds; model and C chosen on an inner speaker-grouped "
           "validation carve", {"ua": 53.1, "ua_std": 13.6}, _ANCHORS_FLOORS,
           "per fold 79.2 (speaker 1157: angry and sad clips only), 54.6, 42.4, 51.5, 45.1, "
           "45.7"),
)

RESULTS: Tuple[Result, ...] = (
    S001_RESULTS + S002_RESULTS + S000_RESULTS + OTHER_RESULTS + FACE_RESULTS
    + S000_FUSION_RESULTS + PRETRAINED_SPEECH_RESULTS
)

# Floors a reproduction report lists beside its results: experiment corpus key -> (system in
# RESULTS, name shown in the report). The values live in RESULTS only (percent); the report
# harness derives its fractions from them with :func:`floors`.
FLOORS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "iemocap_text": (
        ("tfidf_logreg", "TF-IDF (1-2-grams) + logistic regression, single utterance"),
        (
            "tfidf_logreg_context",
            "TF-IDF + logistic regression, previous + next utterance appended",
        ),
    ),
}


def lookup(system: str, corpus: Optional[str] = None) -> List[Result]:
    """All results of ``system`` (optionally only corpora containing ``corpus``)."""
    return [r for r in RESULTS if r.system == system and (corpus is None or corpus in r.corpus)]


def confusion_metrics(
    matrix: Sequence[Sequence[int]], classes: Optional[Sequence[str]] = None
) -> Dict[str, float]:
    """Accuracy, per-class precision/recall/F1 and support-weighted F1 (percent) of a matrix.

    Args:
      matrix: counts, rows = true class, columns = predicted class.
      classes: names for the per-class keys (default "0", "1", ...).

    Returns:
      {"acc", "wf1", "n", "<class>_precision", "<class>_recall", "<class>_f1", ...}.
    """
    m = np.asarray(matrix, dtype=np.float64)
    names = list(classes) if classes is not None else [str(i) for i in range(len(m))]
    hit = np.diag(m)
    support, predicted = m.sum(1), m.sum(0)
    precision = np.divide(hit, predicted, out=np.zeros_like(hit), where=predicted > 0)
    recall = np.divide(hit, support, out=np.zeros_like(hit), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(hit), where=denom > 0)
    out = {
        "n": float(m.sum()),
        "acc": 100 * hit.sum() / m.sum(),
        "wf1": 100 * float(np.sum(f1 * support) / support.sum()),
    }
    for i, c in enumerate(names):
        out[f"{c}_precision"] = 100 * precision[i]
        out[f"{c}_recall"] = 100 * recall[i]
        out[f"{c}_f1"] = 100 * f1[i]
    return out


def corpus_keys(corpus: str) -> List[str]:
    """``corpus``, then the corpus keys it is a variant of, longest first: "iemocap_text_paper"
    (another recipe on the same data and split) -> "iemocap_text_paper", "iemocap_text",
    "iemocap". Floors and same-harness baselines are looked up in this order."""
    parts = corpus.split("_")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]


def floors(corpus: str) -> List[Dict]:
    """The measured floors of an experiment's corpus, for the report harness.

    Args:
      corpus: corpus key of the experiment, e.g. "iemocap_text"; a variant of a corpus key
        (:func:`corpus_keys`, e.g. "iemocap_text_paper") shares its floors.

    Returns:
      [{"name", "accuracy", "weighted_f1" (percent), "source"}] in ``FLOORS`` order; [] for a
      corpus without floors.

    Raises:
      ValueError: a ``FLOORS`` system has no single entry with "acc" and "wf1" in RESULTS.
    """
    out = []
    base = next((k for k in corpus_keys(corpus) if k in FLOORS), corpus)
    for system, name in FLOORS.get(base, ()):
        found = [r for r in RESULTS if r.system == system and {"acc", "wf1"} <= set(r.metrics)]
        if len(found) != 1:
            raise ValueError(f"floor {system!r} of {corpus!r}: {len(found)} results in RESULTS")
        (r,) = found
        out.append(
            {
                "name": name,
                "accuracy": r.metrics["acc"],
                "weighted_f1": r.metrics["wf1"],
                # "shared/ANCHORS.md §2 (floors measured ...)" is cited as "ANCHORS.md §2".
                "source": r.source.split(" (")[0].removeprefix("shared/"),
            }
        )
    return out


def _s002_recall() -> Dict[str, float]:
    cm = confusion_metrics(S002_CONFUSION, IEMOCAP_CLASSES)
    return {c: cm[f"{c}_recall"] for c in IEMOCAP_CLASSES}


# Regression corpora of the S000 §3 entries: experiment corpus key (matched by prefix) -> how
# the entry's ``corpus`` text begins.
REGRESSION_CORPORA = {"cmu_mosei": "CMU-MOSEI", "gmsa": "GMSA"}
# A paper's regression metric -> the harness's names. An Acc-2 or F1 printed without saying
# whether true scores of 0 count as non-negative (has-0) or are dropped (non-0) stands beside
# both of ours, and the entry's ``acc2_variant`` says so.
_REGRESSION_NAMES = {
    "acc2": ("acc2_has0", "acc2_non0"),
    "f1": ("f1_has0", "f1_non0"),
    "acc3": ("acc3",),
    "acc5": ("acc5",),
    "acc7": ("acc7",),
    "mae": ("mae",),
    "corr": ("corr",),
}
# Stored as printed (x100, like the percentages); ours are in score units and in [-1, 1].
_PRINTED_X100 = ("mae", "corr")
REGRESSION_SCALE = (
    "Acc-2, F1 and Acc-3/5/7 in percent; MAE in score units and Corr (Pearson r) in [-1, 1], "
    "the paper's printed x100 values divided by 100 (56.8 -> 0.568)"
)


def _regression_entry(system: str, corpus: str) -> Optional[Dict]:
    """The S000 §3 regression entry of ``system`` on a regression corpus key, in the harness's
    metric names (see :func:`reported`); None when there is none."""
    prefix = next((v for k, v in REGRESSION_CORPORA.items() if corpus.startswith(k)), None)
    found = [r for r in S000_FUSION_RESULTS
             if prefix and r.system == system and r.corpus.startswith(prefix)]
    if len(found) != 1:
        return None
    (r,) = found
    metrics: Dict[str, float] = {}
    for name, value in r.metrics.items():
        for ours in _REGRESSION_NAMES.get(name, ()):
            # round: 71.2 / 100 is 0.7120000000000001 in binary floating point
            metrics[ours] = round(value / 100.0, 10) if name in _PRINTED_X100 else value
    return {
        "system": system,
        "corpus": r.corpus,
        "protocol": r.protocol,
        "source": r.source,
        "note": r.note,
        "task": "regression",
        "scale": REGRESSION_SCALE,
        "acc2_variant": "not stated by the paper: its Acc-2 and F1 stand beside both has-0 and "
                        "non-0" if {"acc2", "f1"} & set(r.metrics) else "",
        "metrics": metrics,
    }


# S000 §3's classification figures, by (system, corpus key prefix) -> the Result's corpus. They
# come from text + audio + video with pretrained features; a run here is text only and learns
# its embeddings, so the report sets them beside ours as context and prints no difference.
_S000_CONTEXT = {
    ("mgmnet", "iemocap"): "IEMOCAP 6-class (dialogues)",
    ("mgmnet", "meld"): "MELD 7-class (dialogues)",
    ("mi", "iemocap"): "IEMOCAP (class set not stated)",
}


def _s000_context_entry(system: str, corpus: str) -> Optional[Dict]:
    """The S000 §3 classification entry of ``system`` on ``corpus``, marked ``context_only``."""
    for (name, prefix), paper_corpus in _S000_CONTEXT.items():
        if system != name or not corpus.startswith(prefix):
            continue
        (r,) = [x for x in S000_FUSION_RESULTS if x.system == name and x.corpus == paper_corpus]
        metrics = {ours: r.metrics[theirs] for theirs, ours in (("acc", "accuracy"),
                                                                 ("wf1", "weighted_f1"))
                   if theirs in r.metrics}
        per_class = {k[len("f1_"):]: {"f1": v} for k, v in r.metrics.items()
                     if k.startswith("f1_")}
        note = (f"S000 reports {r.corpus}, {r.protocol}, from text, audio and video with "
                "pretrained features; "
                + (f"{r.note}; " if r.note and "pretrained" not in r.note else "")
                + "the run here is text only with embeddings learnt from scratch")
        entry = {"system": name, "corpus": r.corpus, "protocol": r.protocol, "source": r.source,
                 "note": note, "context_only": True, "metrics": metrics}
        if per_class:
            entry["per_class"] = per_class
        return entry
    return None


def reported(system: str, corpus: str) -> Optional[Dict]:
    """The headline entry for a (registry system, corpus builder) pair, for the report harness.

    Metric names follow ``mmer_jax.reproduce.harness`` ("accuracy", "weighted_f1"), values in
    percent; ``per_class`` gives recall (from the paper's confusion matrix), precision and F1;
    ``variants`` and ``baselines`` hold the paper's other rows. None when the paper has no number.

    A regression corpus key (:data:`REGRESSION_CORPORA`: "cmu_mosei", "gmsa") gives the S000 §3
    entry of ``system`` ("mi", "tsra") with ``"task": "regression"``, metrics named as the
    harness's regression metrics ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc3",
    "acc5", "acc7", "mae", "corr"; accuracies and F1 in percent, ``mae`` in score units and
    ``corr`` in [-1, 1], converted from the x100 the survey prints: MI's MAE 56.8 -> 0.568),
    ``scale`` (that convention in words) and ``acc2_variant`` (why a paper's Acc-2 stands
    beside both of ours).

    Args:
      system: registry name, e.g. "s002" or "cmn".
      corpus: corpus key of the experiment, e.g. "iemocap_text" or "ravdess_av" (matched by prefix).
    """
    corpus = corpus.lower()
    regression = _regression_entry(system, corpus)
    if regression is not None:
        return regression
    context = _s000_context_entry(system, corpus)
    if context is not None:
        return context
    if corpus.startswith("iemocap") and system in S002_TABLE2:
        (r,) = [x for x in S002_RESULTS if x.system == system]
        entry = {
            "system": system,
            "corpus": r.corpus,
            "protocol": r.protocol,
            "source": r.source,
            "note": r.note,
            "metrics": {"accuracy": r.metrics["acc"], "weighted_f1": r.metrics["wf1"]},
        }
        if system == "s002":
            recall = _s002_recall()
            entry["per_class"] = {
                c: {"recall": recall[c], "precision": a, "f1": f}
                for c, (a, f) in zip(IEMOCAP_CLASSES, S002_TABLE2["s002"][0], strict=True)
            }
            entry["baselines"] = {
                name: {"accuracy": avg[0], "weighted_f1": avg[1]}
                for name, (_, avg) in S002_TABLE2.items()
                if name != "s002"
            }
            # The TF-IDF floors are not the paper's: the report lists them as measured floors.
        return entry
    if corpus.startswith("ravdess") and system == "s001":
        fused = S001_RESULTS[2]
        variants = {r.corpus.split("(")[1].rstrip(")"): r for r in S001_RESULTS[:2]}
        return {
            "system": system,
            "corpus": fused.corpus,
            "protocol": fused.protocol,
            "source": fused.source,
            "note": fused.note,
            "metrics": {"accuracy": fused.metrics["acc"]},
            "variants": {
                **{k: {"accuracy": r.metrics["acc"]} for k, r in variants.items()},
                # Our variant names (experiments/s001_*.py): captions for the single branches,
                # Table I for the fused model at each dropout.
                "audio": {"accuracy": variants["audio only"].metrics["acc"]},
                "video": {"accuracy": variants["video only"].metrics["acc"]},
                "fused": {"accuracy": S001_TABLE1[("ResNet18+ResNet34 (proposed)", 0.3)][0]},
                "fused_dropout05": {
                    "accuracy": S001_TABLE1[("ResNet18+ResNet34 (proposed)", 0.5)][0]
                },
                **{
                    f"{name}, dropout {p}": {"accuracy": acc}
                    for (name, p), (acc, _) in S001_TABLE1.items()
                },
            },
        }
    return None


# ------------------------------------------------- context of the pretrained-encoder reports
# Systems that read a pretrained speech encoder's layers: their reports on a corpus of
# SPEECH_ENCODER_CONTEXT set these figures beside ours, as context (ssl_finetune: issue 29).
PRETRAINED_SPEECH_SYSTEMS = ("ssl_probe", "ssl_finetune")
# A source's metric -> the harness's name (EmoBox: UA, WA, macro F1).
_CONTEXT_METRICS = {"ua": "uar", "wa": "accuracy", "f1": "macro_f1"}


@dataclasses.dataclass(frozen=True)
class ContextRow:
    """One figure set beside a pretrained-encoder report: another encoder or protocol.

    Attributes:
      system: the ``Result.system`` in :data:`PRETRAINED_SPEECH_RESULTS`.
      protocol_start: how that Result's protocol begins (picks one of the system's results).
      encoder: the encoder and read-out (or features) the figure comes from.
      kind: "published benchmark", "measured for this project" or "classical floor".
      folds: the build's fold protocol whose test folds the figure used ("lso", "loso",
        "emobox"), so a report on those folds can say it tested the same speakers; None when
        it is no split of the build.
    """

    system: str
    protocol_start: str
    encoder: str
    kind: str
    folds: Optional[str]


_WHISPER_LAST = ("Whisper base (OpenAI; CTranslate2 copy), frozen, last encoder layer only, mean + "
                 "std over the clip, standardised logistic regression")
_CLASSICAL = ("no encoder: utterance statistics of MFCC / log-mel / pitch, SVM or logistic "
              "regression")
SPEECH_ENCODER_CONTEXT: Dict[str, Tuple[ContextRow, ...]] = {
    "emodb": (
        ContextRow("wavlm_large_emobox", "EmoBox", "WavLM Large (EmoBox's recipe)",
                   "published benchmark", "emobox"),
        ContextRow("wav2vec2_base_emobox", "EmoBox", "wav2vec 2.0 base (EmoBox's recipe)",
                   "published benchmark", "emobox"),
        ContextRow("whisper_base_last_layer_logreg", "5 leave-two", _WHISPER_LAST,
                   "measured for this project", "lso"),
        ContextRow("utterance_stats_classical", "5 leave-two", _CLASSICAL + " (297 numbers)",
                   "classical floor", "lso"),
        ContextRow("utterance_stats_classical", "EmoBox folds", _CLASSICAL + " (297 numbers)",
                   "classical floor", "emobox"),
    ),
    "turev_db": (
        ContextRow("whisper_base_last_layer_logreg", "6 leave-one", _WHISPER_LAST,
                   "measured for this project", "loso"),
        ContextRow("utterance_stats_classical", "6 leave-one",
                   "no encoder: 902 utterance statistics (log-mel, MFCC + deltas, RMS, ZCR, "
                   "spectral shape, pYIN pitch), logistic regression or RBF SVC",
                   "classical floor", "loso"),
    ),
}


def encoder_context(system: str, corpus: str) -> List[Dict]:
    """The figures a pretrained-encoder report on ``corpus`` sets beside ours.

    Args:
      system: registry name; only :data:`PRETRAINED_SPEECH_SYSTEMS` get rows.
      corpus: corpus key of the experiment ("emodb", "turev_db"; a variant of a key,
        :func:`corpus_keys`, shares its rows).

    Returns:
      [{"name", "encoder", "kind", "corpus", "protocol", "folds", "metrics" ({"uar",
      "uar_std", "accuracy", "macro_f1"} present ones, percent), "source", "note"}] in
      :data:`SPEECH_ENCODER_CONTEXT` order; [] for another system or corpus.

    Raises:
      ValueError: a row does not name exactly one result of :data:`PRETRAINED_SPEECH_RESULTS`.
    """
    if system not in PRETRAINED_SPEECH_SYSTEMS:
        return []
    base = next((k for k in corpus_keys(corpus) if k in SPEECH_ENCODER_CONTEXT), None)
    out = []
    for row in SPEECH_ENCODER_CONTEXT.get(base, ()):
        found = [r for r in PRETRAINED_SPEECH_RESULTS
                 if r.system == row.system and r.protocol.startswith(row.protocol_start)]
        if len(found) != 1:
            raise ValueError(f"context row {row.system!r} / {row.protocol_start!r}: "
                             f"{len(found)} results in PRETRAINED_SPEECH_RESULTS")
        (r,) = found
        metrics = {}
        for k, v in r.metrics.items():
            name, std = k.removesuffix("_std"), k.endswith("_std")
            metrics[_CONTEXT_METRICS[name] + ("_std" if std else "")] = v
        out.append({"name": r.system, "encoder": row.encoder, "kind": row.kind,
                    "corpus": r.corpus, "protocol": r.protocol, "folds": row.folds,
                    "metrics": metrics, "source": r.source.removeprefix("shared/"),
                    "note": r.note})
    return out


OTHER_CORPUS_NOTES["ssl_probe"] = (
    "the SUPERB / EmoBox probing protocol has no seed paper; on EmoDB and TurEV-DB other "
    "encoders' and protocols' figures stand beside ours under *Other encoders and protocols*, "
    "as context"
)
OTHER_CORPUS_NOTES["ssl_finetune"] = (
    "fine-tuning a pretrained speech encoder end to end has no seed paper; on EmoDB and "
    "TurEV-DB other encoders' and protocols' figures stand beside ours under *Other encoders "
    "and protocols*, as context"
)
