"""TFDS builders for emotion corpora.

One sub-package per corpus (``data_prep/<corpus>/<corpus>.py``). This package imports nothing from
``mmer_jax``: builders store decoded signals (16 kHz int16 audio, uint8 frames and face crops, text,
ids), never model features, so a feature change never forces a rebuild.

:data:`CORPORA` maps the public corpus name (``data.corpus``) to its builder class, imported on
first lookup (importing the module registers the builder with TFDS). Use
:func:`data_prep.build.build` (or ``mmer data build NAME``) to prepare one. A new corpus is one
sub-package plus one ``register_lazy`` line below.
"""

from mmer_registry import Registry

CORPORA: Registry[type] = Registry("corpus")

CORPORA.register_lazy("generated_emotion", "data_prep.generated.generated:GeneratedEmotion")
CORPORA.register_lazy("ravdess", "data_prep.ravdess.ravdess:Ravdess")
CORPORA.register_lazy("crema_d", "data_prep.crema_d.crema_d:CremaD")
CORPORA.register_lazy("emodb", "data_prep.emodb.emodb:Emodb")
CORPORA.register_lazy("iemocap", "data_prep.iemocap.iemocap:Iemocap")
CORPORA.register_lazy("meld", "data_prep.meld.meld:Meld")
CORPORA.register_lazy("cmu_mosi", "data_prep.cmu_mosi.cmu_mosi:CmuMosi")
CORPORA.register_lazy("cmu_mosei", "data_prep.cmu_mosei.cmu_mosei:CmuMosei")
CORPORA.register_lazy("folder", "data_prep.folder.folder:LabelledFolder")
