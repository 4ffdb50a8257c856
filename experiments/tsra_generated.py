"""TSRA (S000 §3.2) on the generated corpus: a vector per modality (2-layer LSTMs over the audio
features and the per-frame CNN features, a Bi-LSTM over the tokens), shared / private / fused
spaces, similarity + difference + reconstruction losses beside the cross-entropy, and a 2-layer
stacked LSTM over the space vectors.

    mmer reproduce tsra --corpus generated --seeds 3

The survey reports TSRA on GMSA only (not available), so these numbers have no paper target.
Widths are CPU-sized (32-64); audio frames are averaged in pairs before the LSTM (a 75-step
recurrence instead of 150). A single-modality variant has one shared vector, so its similarity
term is absent (it needs two modalities).

What the committed report shows: within 8 epochs the frame stream (per-frame CNN -> 2-layer LSTM
-> last state -> spaces -> stacked LSTM) does not leave chance, and the fused model separates
only the audio pairs. In short probes the registered ``cnn_lstm`` encoder (1-layer LSTM plus the
temporal mean of the frame features) learned the frames faster than this 2-layer last-state
encoder; it is not the survey's design, so it is not used here.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated(base_config("tsra"))
    cfg.variants = ml_collections.ConfigDict(
        dict(audio=["audio"], video=["frames"], text=["text"], fused=["frames", "audio", "text"])
    )
    m = cfg.model
    m.modalities = ["frames", "audio", "text"]
    m.hidden = 48
    m.dim = 48
    m.audio_pool = 2
    m.frame_widths = [16, 32, 32]
    m.frame_dim = 64
    m.text_embed = 32
    m.text_hidden = 32
    m.recognizer_hidden = 48
    m.head_hidden = 48
    m.dropout = 0.2
    cfg.train.epochs = 8
    return cfg
