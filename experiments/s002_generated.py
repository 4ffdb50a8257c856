"""S002 on the generated corpus: utterance encoders (audio 4-layer Bi-LSTM + 4 linear + attention
pooling; visual 3-D CNN; text embedding CNN) -> context Bi-LSTM -> MHA with residual LayerNorm.

    mmer reproduce s002 --corpus generated --seeds 3

The generated corpus has no dialogues: every utterance is its own one-turn dialogue (U = 1), so the
context Bi-LSTM and the attention see a single step. Encoder widths are CPU-sized.
"""

import ml_collections

from experiments.common import generated_config


def get_config() -> ml_collections.ConfigDict:
    cfg = generated_config("s002")
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], text=["text"], fused=["text", "audio", "frames"])
    )
    cfg.primary_variant = "fused"
    cfg.model = ml_collections.ConfigDict(
        dict(
            name="s002",
            modalities=["text", "audio", "frames"],
            dropout=0.3,
            embed_dim=64,
            text_filters=32,
            text_out=64,
            audio_hidden=32,
            audio_layers=4,
            audio_linear=(64, 64, 64, 64),
            audio_attn_hidden=32,
            visual_channels=(16, 32, 32),
            visual_out=64,
            context_hidden=64,
            num_heads=4,
            head_hidden=64,
        )
    )
    return cfg
