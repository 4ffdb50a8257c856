"""The fusion ablation on the generated corpus: S003's encoders (MobileFaceNet-like CNN per frame
+ LSTM, 1-D CNN + LSTM over log-mel audio), the fused frames+audio model only; ``mmer reproduce
--ablation fusion`` trains it once per fusion (``model.fusion`` = concat, dynconv_gate, tfn, lmf,
mult, late, bridge, bilinear) with everything else equal: encoders, head, budget, seeds. Without
text, ``bridge`` and ``bilinear`` take audio as the bridge (the first modality by name).

    mmer reproduce --ablation fusion --corpus generated --seeds 3

No augmentation (unlike ``s003_generated.py``): the ablation compares fusions, and a budget of
unaugmented epochs keeps the six rows affordable on a CPU.
"""

import ml_collections

from experiments import corpora
from mmer_jax.config import base_config


def get_config() -> ml_collections.ConfigDict:
    cfg = corpora.generated(base_config("s003"))
    cfg.variants = ml_collections.ConfigDict(dict(fused=["frames", "audio"]))
    cfg.primary_variant = "fused"
    cfg.train.epochs = 4
    cfg.model.modalities = ["frames", "audio"]
    cfg.model.lstm_hidden = 64
    cfg.model.fc_hidden = 64
    return cfg
