"""TFDS builders for emotion corpora.

One sub-package per corpus (``data_prep/<corpus>/<corpus>.py``). This package imports nothing from
``mmer_jax``: builders store decoded signals (16 kHz int16 audio, uint8 frames and face crops, text,
ids), never model features, so a feature change never forces a rebuild.

``BUILDERS`` maps the public dataset name to ``"module:ClassName"``; importing the module
registers the builder with TFDS. Use :func:`data_prep.build.build` (or ``mmer data build NAME``)
to prepare one.
"""

BUILDERS: dict[str, str] = {
    "generated_emotion": "data_prep.generated.generated:GeneratedEmotion",
    "ravdess": "data_prep.ravdess.ravdess:Ravdess",
    "crema_d": "data_prep.crema_d.crema_d:CremaD",
    "emodb": "data_prep.emodb.emodb:Emodb",
    "iemocap": "data_prep.iemocap.iemocap:Iemocap",
    "meld": "data_prep.meld.meld:Meld",
    "cmu_mosi": "data_prep.cmu_mosi.cmu_mosi:CmuMosi",
    "cmu_mosei": "data_prep.cmu_mosei.cmu_mosei:CmuMosei",
}
