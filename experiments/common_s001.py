"""S001's pieces shared by its corpus configs: the model block and the four variants (audio-only,
video-only, fused at dropout 0.3, fused at dropout 0.5, as in the paper's Table I)."""

import ml_collections


def s001_model(modalities, width: int, video_stem_pool: bool, lstm_hidden: int):
    """MFCC -> ResNet-18 speech branch, frames -> ResNet-34 -> LSTM video branch, concat -> FC.

    ``width`` is the ResNets' base channels: the paper's 64, or 16 to fit a CPU.
    """
    model = dict(
        name="s001",
        modalities=list(modalities),
        dropout=0.3,
        audio_depth="resnet18",
        audio_width=width,
        audio_stem_stride=2,
        audio_stem_pool=True,
    )
    if "frames" in modalities:
        model.update(
            video_depth="resnet34",
            video_width=width,
            video_stem_stride=2,
            video_stem_pool=video_stem_pool,
        )
    model.update(norm="batch", lstm_hidden=lstm_hidden)
    return ml_collections.ConfigDict(model)


def add_av_variants(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    cfg.variants = ml_collections.ConfigDict(
        dict(
            audio=["audio"],
            video=["frames"],
            fused=["audio", "frames"],
            fused_dropout05=["audio", "frames"],
        )
    )
    cfg.variant_overrides = ml_collections.ConfigDict(
        dict(fused_dropout05=dict(model=dict(dropout=0.5)))
    )
    cfg.primary_variant = "fused"
    cfg.data.frontend = "mfcc"
    cfg.data.n_mfcc = 40
    return cfg
