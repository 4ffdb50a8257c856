"""S004's hybrid (``model.name = "s004_hybrid"``): two finished encoder runs (``s004_speech``,
``s004_face``) -> their exported features -> S004's context LSTMs -> min-max / chi-square ->
one LIBSVM per channel -> Sugeno / Choquet fuzzy-integral fusion, fitted in two stages.

Source: seed paper S004 (``shared/papers/S004_*``). This file holds the ``model`` section (every
default of the system, what ``experiments/s004_hybrid_<corpus>.py`` sets) and registers it with
its trainer, evaluator, predictor and reporter (the modules beside it, imported only when a run
needs them). The registered build returns the one neural part, a context LSTM.
"""

from __future__ import annotations

import dataclasses

from mmer_jax.fitted.s004_hybrid.context_lstm import ContextConfig, ContextLSTM
from mmer_jax.registry import register_system

_HERE = "mmer_jax.fitted.s004_hybrid"
CONTEXTS = ("none", "within", "within+across")
# Rows a run can serve: each channel's SVC, the fuzzy fusions, the concatenated channels' SVC.
SERVED_ROWS = ("speech", "face", "sugeno", "choquet", "concat")


@dataclasses.dataclass(frozen=True)
class EncoderRun:
    """One finished encoder run the hybrid reads.

    Attributes:
      system: the encoder's system (its runs' ``<system>`` directory under ``mmer reproduce``).
      key: the exported ``aux`` entry used as the channel (``feat_audio``, ``tap_fc``).
      run: the run directory; ``{root}``, ``{system}``, ``{corpus}`` and ``{seed}`` are filled
        in (``{root}/{corpus}`` from the hybrid run's ``<root>/s004_hybrid/<corpus>/seed<k>``,
        where ``mmer reproduce`` puts it), so by default seed k reads the encoder's seed k of
        the same ``mmer reproduce`` workdir.
    """

    system: str = "s004_speech"
    key: str = "feat_audio"
    run: str = "{root}/{system}/{corpus}/seed{seed}"


@dataclasses.dataclass(frozen=True)
class S004HybridConfig:
    """``model`` section of ``s004_hybrid``.

    Attributes:
      modalities: what the encoders read (prediction decodes these from a file).
      speech, face: the two encoder runs; the face run also gives Table 2's taps.
      face_taps: Table 2: each face tap alone -> LIBSVM.
      chi2_keep: the fraction of each channel's features chi-square keeps (S004: 0.5); every
        row is also fitted without selection (Figure 8's ablation).
      c_grid, gamma_scales: the SVC grid chosen on validation weighted F1 (gamma as multiples
        of 1 / (D * var(x_train))).
      context: S004's LSTMs: "none", "within" (one per modality over a video's utterances) or
        "within+across" (and one over the spliced modalities).
      context_lstm: every context LSTM's settings.
      served_row: the row ``results.json`` headlines and ``mmer predict`` / ``serve`` /
        ``eval`` answer with: fitted with chi-square and without the context stage, since a
        single file has no video of utterances around it.
    """

    name: str = "s004_hybrid"
    modalities: tuple[str, ...] = ("audio", "frames")
    speech: EncoderRun = EncoderRun()
    face: EncoderRun = EncoderRun(system="s004_face", key="tap_fc")
    face_taps: tuple[str, ...] = ("tap_conv", "tap_avgpool", "tap_dropout", "tap_fc")
    chi2_keep: float = 0.5
    c_grid: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
    gamma_scales: tuple[float, ...] = (0.1, 1.0, 10.0)
    context: str = "within+across"
    context_lstm: ContextConfig = ContextConfig()
    served_row: str = "choquet"

    def __post_init__(self):
        if self.context not in CONTEXTS:
            raise ValueError(f"context={self.context!r} must be one of {', '.join(CONTEXTS)}")
        if self.served_row not in SERVED_ROWS:
            raise ValueError(f"served_row={self.served_row!r} must be one of "
                             f"{', '.join(SERVED_ROWS)}")
        if not 0.0 < self.chi2_keep <= 1.0:
            raise ValueError(f"chi2_keep={self.chi2_keep} must be in (0, 1]")
        if not (self.c_grid and self.gamma_scales and self.face_taps):
            raise ValueError("c_grid, gamma_scales and face_taps each need at least one value")
        if self.face.key not in self.face_taps:
            raise ValueError(f"face.key={self.face.key!r} must be one of face_taps "
                             f"{self.face_taps}")


@register_system("s004_hybrid", S004HybridConfig,
                 trainer=f"{_HERE}.trainer:S004HybridTrainer",
                 evaluator=f"{_HERE}.trainer:evaluate_saved",
                 predictor=f"{_HERE}.predictor:S004HybridPredictor",
                 reporter=f"{_HERE}.report:write_report")
def build(cfg: S004HybridConfig, num_classes: int, vocab_size: int = 0) -> ContextLSTM:
    """A within-modality context LSTM of the system (the classifiers are fitted by its
    trainer)."""
    del vocab_size
    c = cfg.context_lstm
    return ContextLSTM(c.hidden, num_classes, c.bidirectional)
