"""S002 on the generated corpus: utterance encoders (audio 4-layer Bi-LSTM + 4 linear + attention
pooling; visual 3-D CNN; text embedding CNN) -> context Bi-LSTM -> MHA with residual LayerNorm.

    mmer reproduce s002 --corpus generated --seeds 3

The generated corpus has no dialogues: every utterance is its own one-turn dialogue (U = 1), so the
context Bi-LSTM and the attention see a single step. Encoder widths are CPU-sized.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated(base_config("s002"))
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], text=["text"], fused=["text", "audio", "frames"])
    )
    m = cfg.model
    m.modalities = ["text", "audio", "frames"]
    m.dropout = 0.3
    m.text.embed_dim = 64
    m.text.filters = 32
    m.text.out = 64
    m.text.dropout = 0.3
    m.audio.hidden = 32
    m.audio.linear = [64, 64, 64, 64]
    m.audio.attn_hidden = 32
    m.visual.channels = [16, 32, 32]
    m.visual.out = 64
    m.context_hidden = 64
    m.head_hidden = 64
    return cfg
