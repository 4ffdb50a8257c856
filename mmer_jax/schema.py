"""The config schema: one frozen dataclass per config section, every default in exactly one place.

An experiment file returns an ``ml_collections.ConfigDict`` (so ``--config.train.lr=1e-3`` works);
its ``data``, ``train`` and ``protocol`` sections are built from the dataclasses below, and the
``model`` section from the config class its system registers (``mmer_jax.models``). Code receives
the typed section it needs, built strictly with :func:`from_section`:

    train = from_section(TrainConfig, cfg.train, "train")   # unknown key -> UsageError naming it
    train.lr, train.schedule                                   # no .get(key, default) anywhere

This module imports nothing heavier than ml_collections, so the data and train layers, the CLI
and the kernels' users can all read it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import ml_collections

from mmer_jax import metric_table
from mmer_jax.errors import UsageError

C = TypeVar("C")

SPLITS = ("train", "validation", "test")
# Metrics a run can be selected on: keys of ``train.metrics.classification_metrics`` for
# ``protocol.task = "classification"``, of ``train.regression.regression_metrics`` for "regression".
CLASSIFICATION_METRICS = metric_table.CLASSIFICATION
REGRESSION_METRICS = metric_table.REGRESSION
SELECT_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
# Selection keeps the lowest validation value of these (the table's direction).
LOWER_IS_BETTER = metric_table.LOWER_IS_BETTER


def _choices(default: Any, *choices: Any) -> Any:
    return dataclasses.field(default=default, metadata={"choices": choices})


def _list(*default: Any) -> Any:
    return dataclasses.field(default=tuple(default))


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """``cfg.data``: which corpus, how it is read, and the host/device feature settings.

    Units: seconds for ``*_s``, audio samples for ``n_fft``/``hop``, Hz for ``sample_rate``.
    """

    corpus: str = "generated_emotion"  # a name in data_prep.CORPORA
    config: str = "default"  # the builder config (variant / fold)
    # > 0: fold K (1-based) of a fold protocol stored with the build (data_prep.folds), applied
    # when reading: the build's examples are re-split, so every fold reads one build.
    fold: int = 0
    fold_protocol: str = ""  # which of the build's fold protocols ("" = its default)
    # EmoBox's checkout (or its data/ folder): with fold_protocol="emobox", EmoBox's own fold
    # files are read from here over the build (any corpus EmoBox has folds of).
    emobox_dir: str = ""
    data_dir: str = "~/tensorflow_datasets"
    manual_dir: str = ""  # the corpus as distributed; "" for generated corpora
    build_if_missing: bool = True
    # Worker processes for a build started by a run (decoding, resampling, face detection; 0 =
    # one per CPU core); the prepared files are byte-identical for any count.
    build_workers: int = 1
    cache: bool = True  # decode each record once and keep it in memory
    read_threads: int = 2  # grain read-ahead threads; 0 reads in the calling thread
    unit: str = _choices("utterance", "utterance", "dialogue")  # what one batch row is
    sample_rate: int = 16000
    max_audio_s: float = 4.0  # longer clips: a random window in training, the centre otherwise
    audio_bucket_s: float = 0.5  # audio is padded to a multiple of this
    # Computed on the device (mmer_jax.data.device): "logmel" / "mfcc" [B, T, n_mels / n_mfcc];
    # "whisper": Whisper's own log-mel ([B, T, 80]; 128 bins when n_mels=128; 16 kHz, 10-ms
    # frames), the input of an imported Whisper; "waveform": the samples themselves, float32
    # [B, N] in [-1, 1], the input of an imported wav2vec 2.0 / HuBERT / WavLM. The last two are
    # their encoders' own normalisation: they need feature_norm=False and speaker_norm="none".
    frontend: str = _choices("logmel", "logmel", "mfcc", "whisper", "waveform")
    n_mels: int = 64
    n_mfcc: int = 40
    n_fft: int = 400
    hop: int = 160
    feature_norm: bool = True  # per-utterance mean/variance normalisation of the features
    # Per-speaker normalisation of the features (mmer_jax.data.speaker_norm), with statistics over
    # every clip of the speaker, labels unused: "mean" subtracts the speaker's mean per feature,
    # "mean_var" also divides by its standard deviation. Needs feature_norm=False (per-utterance
    # normalisation removes the level and spectral shape that speaker normalisation keeps) and
    # utterance units whose records store a speaker.
    speaker_norm: str = _choices("none", "none", "mean", "mean_var")
    max_frames: int = 16
    max_tokens: int = 48
    token_bucket: int = 8
    min_count: int = 1  # words seen fewer times in the training split map to <unk>
    # An imported text encoder's directory (BERT / RoBERTa: its tokenizer.json) or a
    # tokenizer.json: text is tokenized by that checkpoint's tokenizer (ids + 1, so 0 stays
    # padding; mmer_jax.data.pretrained_tokenizer.PretrainedVocab), as an ``imported`` text
    # encoder reads it. "" = the word vocabulary fitted to the training split (min_count).
    tokenizer: str = ""
    # Feature-stream modalities (text_feat, audio_feat, vision_feat of cmu_mosi / cmu_mosei):
    # longer sequences are cut to a window of this many steps (random in training, the centre
    # otherwise); batches pad the step axis to a multiple of ceil(max_feat_steps / 4).
    max_feat_steps: int = 64
    max_utterances: int = 128  # dialogue units: longer dialogues are split into chunks
    utterance_bucket: int = 8  # dialogue units: the utterance axis is padded to a multiple
    drop_remainder: bool = False  # dialogue units: drop the last partial training batch
    # Dialogue units with text: > 0 packs the batch's real utterances into ``tokens_packed``
    # [N, L] (N a multiple of this) so the word encoder skips padded utterances (a dialogue batch
    # of IEMOCAP is ~50 % padding on the utterance axis); 0: the word encoder runs on [B, U, L].
    # Single-host only (packed rows index the host's own batch).
    pack_utterances: int = 0
    # Online ops on training examples, e.g. ({"name": "random_crop_images", "padding": 2},)
    # (names in mmer_jax.data.augment.AUGMENTATIONS).
    augment: tuple = _list()
    # Precomputed audio copies added to the training split, e.g. ({"name": "pitch_shift",
    # "n_steps": 2},) (names in mmer_jax.data.augment.OFFLINE_AUGMENTATIONS).
    offline_augment: tuple = _list()
    # One score per class, in label order: a synthetic regression target (``score`` = the value of
    # the example's class) for corpora that store only classes (tests, the generated corpus).
    # Empty: the record's own ``score`` field (cmu_mosi / cmu_mosei), when it has one.
    class_scores: tuple[float, ...] = _list()
    # A pretrained encoder imported with `mmer encoders import|fetch` (its directory): every
    # layer's features of every clip of the build are computed once into the encoder-feature
    # cache beside the build (mmer_jax.data.encoder_cache) and read as the feature-stream
    # modality "encoder_feat". "" = none.
    encoder: str = ""
    # "frames": every layer's frame features [T, L, D] (float16); "pooled": per layer the mean
    # and standard deviation over the clip's frames [1, L, 2D] (for corpora too large for
    # frames).
    encoder_store: str = _choices("frames", "frames", "pooled")
    # Clips longer than this are encoded in consecutive windows of this length (Whisper's own
    # is 30 s) whose frames are concatenated.
    encoder_window_s: float = 30.0
    # How a window reaches the encoder: "own_length" (the clip as it is; what CTranslate2's
    # encode and wav2vec 2.0-style encoders do) or "padded" (zero-padded to encoder_window_s and
    # encoded whole, the clip's own frames kept: Whisper's training input, 30 s of audio).
    encoder_window: str = _choices("own_length", "own_length", "padded")

    def __post_init__(self):
        _positive(self, "sample_rate", "n_fft", "hop", "max_frames", "max_tokens", "token_bucket",
                  "max_utterances", "utterance_bucket", "n_mels", "n_mfcc", "min_count",
                  "max_feat_steps")
        _positive(self, "max_audio_s", "audio_bucket_s", "encoder_window_s")
        if self.read_threads < 0:
            raise ValueError(f"read_threads={self.read_threads} must be >= 0")
        if self.build_workers < 0:
            raise ValueError(f"build_workers={self.build_workers} must be >= 0 (0: one per CPU "
                             "core)")
        if self.fold < 0:
            raise ValueError(f"fold={self.fold} must be >= 0 (0: the build's own splits)")
        if self.frontend in ("whisper", "waveform") and (self.feature_norm
                                                          or self.speaker_norm != "none"):
            what = ("feature_norm=True" if self.feature_norm
                    else f"speaker_norm={self.speaker_norm!r}")
            raise ValueError(f"frontend={self.frontend!r} is a pretrained encoder's own input, "
                             f"which {what} would change: set feature_norm=False and "
                             "speaker_norm='none'")
        if self.frontend in ("whisper", "waveform") and self.sample_rate != 16000:
            raise ValueError(f"frontend={self.frontend!r} reads 16 kHz audio; got "
                             f"sample_rate={self.sample_rate}")
        if self.speaker_norm != "none" and self.feature_norm:
            raise ValueError(f"feature_norm=True (per-utterance normalisation) removes what "
                             f"speaker_norm={self.speaker_norm!r} keeps: set feature_norm=False")
        if self.speaker_norm != "none" and self.unit != "utterance":
            raise ValueError(f"speaker_norm={self.speaker_norm!r} needs unit='utterance'")
        if self.pack_utterances < 0:
            raise ValueError(f"pack_utterances={self.pack_utterances} must be >= 0 (0: off)")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """``cfg.train``: optimisation, selection, checkpointing and logging of one run."""

    epochs: int = 10
    batch_size: int = 32  # global: across every device and host
    lr: float = 1e-3  # peak learning rate
    optimizer: str = _choices("adamw", "adamw", "adam", "sgd")  # adam: L2 added to the gradient
    weight_decay: float = 1e-4
    schedule: str = _choices("cosine", "cosine", "constant")
    warmup_steps: int = 0
    grad_clip: float = 1.0  # global-norm clipping; 0 disables it
    label_smoothing: float = 0.0
    # > 0: mixup of training batches in feature space, lam ~ Beta(alpha, alpha) per step
    # (mmer_jax.train.mixup); utterance classification only. 0: off.
    mixup_alpha: float = 0.0
    # > 0: keep an exponential moving average of the parameters (decay per step, ramped as
    # min(decay, (1 + step) / (10 + step))); validation, selection, test and prediction use it.
    ema_decay: float = 0.0
    aux_loss_weight: float = 0.0  # > 0: add the model's aux_logits loss (deep supervision)
    dtype: str = _choices("float32", "float32", "bfloat16")  # bfloat16: float32 master weights
    select_metric: str = _choices("weighted_f1", *SELECT_METRICS)  # on validation only
    keep_checkpoints: int = 2
    checkpoint_every_steps: int = 0  # 0: at the end of every epoch only
    log_every: int = 10  # steps between train-metric lines
    progress: bool = True
    num_devices: int = 0  # 0 = every local device
    stop_after_steps: int = 0  # > 0 simulates an interruption (tests of resume)
    # > 1: each batch of batch_size examples is split into this many micro-batches whose
    # gradients are summed before the one optimizer step (activation memory of batch_size / k;
    # batch_size stays the examples per optimizer step, so the LR schedule is unchanged).
    grad_accum_steps: int = 1
    # Fine-tuning an imported encoder (a model section's ``imported`` encoder with freeze=False,
    # mmer_jax.train.imports): layer k of its N layers learns at lr * layer_lr_decay^(N - k)
    # (k = 0: everything below the first layer; the model's own layers, the top of the encoder
    # and the weighted-state logits: lr); 1 = one rate everywhere. freeze_stem: its convolutional
    # stem / feature extractor (Whisper's two convolutions, wav2vec 2.0's feature extractor, an
    # image network's first convolutions) is not updated. No effect on models without one.
    layer_lr_decay: float = 1.0
    freeze_stem: bool = True
    # Devices on the second mesh axis "fsdp" (1 = pure data parallelism): parameter and
    # optimizer-state leaves of at least fsdp_min_size elements are stored sharded over it.
    fsdp: int = 1
    fsdp_min_size: int = 65536  # elements
    # "A:B": a jax.profiler trace of steps A+1..B (as numbered in metrics.jsonl) written to
    # <workdir>/profile/<variant>/; "" = no trace.
    profile_steps: str = ""
    # True: XLA_FLAGS gets --xla_gpu_deterministic_ops=true --xla_gpu_autotune_level=0 before
    # JAX starts its backend (run-to-run identical GPU results, slower); no effect on CPU.
    deterministic: bool = False

    def __post_init__(self):
        _positive(self, "epochs", "batch_size", "lr", "keep_checkpoints", "log_every",
                  "grad_accum_steps", "fsdp")
        for name in ("weight_decay", "warmup_steps", "grad_clip", "aux_loss_weight", "mixup_alpha",
                     "checkpoint_every_steps", "num_devices", "stop_after_steps",
                     "fsdp_min_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay={self.ema_decay} must be in [0, 1) (0: off)")
        if not 0.0 < self.layer_lr_decay <= 1.0:
            raise ValueError(f"layer_lr_decay={self.layer_lr_decay} must be in (0, 1] (1: off)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        profile_window(self.profile_steps)  # raises on a malformed window


def profile_window(spec: str) -> tuple[int, int] | None:
    """Parses a ``train.profile_steps`` window "A:B" (0 <= A < B, optimizer steps).

    Returns:
      ``(A, B)``: the trace covers the steps numbered A+1..B; None for "".

    Raises:
      ValueError: not two integers "A:B" with 0 <= A < B (message ``profile_steps=...``).
    """
    if not spec:
        return None
    parts = spec.split(":")
    try:
        start, stop = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        start = stop = None
    if start is None or not 0 <= start < stop:
        raise ValueError(f"profile_steps={spec!r} must be 'A:B' with integers 0 <= A < B "
                         "(e.g. '10:15' traces steps 11 to 15)")
    return start, stop


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
    """``cfg.protocol``: how the reported numbers were obtained, written into results.json."""

    split: str = ""  # "" -> described from the speakers measured on the data
    fold: str = ""
    speaker_independent: bool = True  # declared; replaced by the measurement when possible
    measure_speakers: bool = True  # False where stored speaker ids are not people (M/F)
    # What is predicted. "classification": the stored class ``label`` (softmax head, cross-entropy,
    # accuracy/F1/UAR). "regression": the stored sentiment ``score`` (CMU-MOSI/MOSEI, [-3, 3]; or
    # data.class_scores): a 1-output head, ``regression_loss``, and MMSA's metrics (Acc-2 has0 /
    # non0, F1, Acc-3/5/7, MAE, Corr; mmer_jax.train.regression). A protocol setting because the
    # same corpus read either way gives different, incomparable numbers (S004's binary polarity vs
    # MMSA's regression on MOSI); the head and loss follow from it.
    task: str = _choices("classification", "classification", "regression")
    regression_loss: str = _choices("l1", "l1", "mse")  # l1: MMSA's regression loss


SECTIONS: dict[str, type] = {"data": DataConfig, "train": TrainConfig, "protocol": ProtocolConfig}


def derived(default: Any) -> Any:
    """A dataclass field that is not a config key: its builder sets it (e.g. a vocabulary size
    known only once the corpus is read). Configs that name it are rejected as unknown keys."""
    return dataclasses.field(default=default, metadata={"derived": True})


def _positive(obj, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be > 0")


# -- strict construction -----------------------------------------------------------------------
def plain(value: Any) -> Any:
    """ConfigDicts and lists -> dicts and tuples, recursively (hashable where possible)."""
    if isinstance(value, ml_collections.ConfigDict):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    return value


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple or hint is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(map(_type_ok, value, args)))
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def from_section(cls: type[C], section: Any, path: str) -> C:
    """Builds the frozen dataclass ``cls`` from a config section, strictly.

    Nested dataclass fields are built from nested sections; lists become tuples; ints are
    accepted for floats.

    Args:
      cls: a dataclass type (its defaults are the schema's defaults).
      section: a ConfigDict, a mapping, or an instance of ``cls`` (returned as is).
      path: the section's dotted name ("train", "model.audio"), used in error messages.

    Raises:
      UsageError: a key ``cls`` does not know, a value of the wrong type or out of range; the
        message names the full key (``config key 'train.epochs': ...``).
    """
    if isinstance(section, cls):
        return section
    if section is None:
        section = {}
    values = plain(section)
    if not isinstance(values, Mapping):
        raise UsageError(f"config key {path!r} must be a section (a dict), got {section!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("derived")}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UsageError(
            f"unknown config key '{path}.{unknown[0]}'; known keys in {path!r}: "
            f"{', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint, key = hints[name], f"{path}.{name}"
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = from_section(hint, value, key)
        elif not _type_ok(value, hint):
            want = getattr(hint, "__name__", str(hint))
            raise UsageError(f"config key {key!r} expects {want}, got {value!r}")
        choices = fields[name].metadata.get("choices")
        if choices and value not in choices:
            raise UsageError(
                f"config key {key!r} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )
        kwargs[name] = float(value) if hint is float else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        # Range checks say "name=value must ..."; name the full key when they do.
        name = str(exc).split("=", 1)[0]
        where = f"config key '{path}.{name}'" if name in fields else f"config section {path!r}"
        raise UsageError(f"{where}: {exc}") from exc


def to_config_dict(obj: Any) -> ml_collections.ConfigDict:
    """A dataclass instance -> a ConfigDict with the same (nested) keys and values."""
    def unfreeze(value):
        if dataclasses.is_dataclass(value):
            return {f.name: unfreeze(getattr(value, f.name)) for f in dataclasses.fields(value)
                    if not f.metadata.get("derived")}
        if isinstance(value, (tuple, list)):  # editable lists; from_section makes tuples again
            return [unfreeze(v) for v in value]
        if isinstance(value, Mapping):
            return {k: unfreeze(v) for k, v in value.items()}
        return value

    return ml_collections.ConfigDict(unfreeze(obj))


def sections(cfg: ml_collections.ConfigDict) -> tuple[DataConfig, TrainConfig, ProtocolConfig]:
    """The typed ``data``, ``train`` and ``protocol`` sections of a run config."""
    out = (
        from_section(DataConfig, cfg.data, "data"),
        from_section(TrainConfig, cfg.train, "train"),
        from_section(ProtocolConfig, cfg.protocol, "protocol"),
    )
    check_task(*out)
    return out


def check_task(data: DataConfig, train: TrainConfig, protocol: ProtocolConfig) -> None:
    """Checks that the sections agree with ``protocol.task``: a regression run selects on a
    regression metric (and a classification run on a classification one) and reads utterances.

    Raises:
      UsageError: naming ``train.select_metric`` or ``data.unit`` and the values that fit.
    """
    regression = protocol.task == "regression"
    fits = REGRESSION_METRICS if regression else CLASSIFICATION_METRICS
    if train.select_metric not in fits:
        raise UsageError(
            f"config key 'train.select_metric': {train.select_metric!r} is not a "
            f"{protocol.task} metric; with protocol.task={protocol.task!r} use one of "
            f"{', '.join(map(repr, fits))}"
        )
    if regression and train.mixup_alpha:
        raise UsageError("config key 'train.mixup_alpha': mixup mixes class targets; use 0 with "
                         "protocol.task='regression'")
    if regression and data.unit != "utterance":
        raise UsageError("config key 'data.unit': protocol.task='regression' reads utterances "
                         f"(data.unit='utterance'), got {data.unit!r}")
