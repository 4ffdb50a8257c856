"""CMU-MOSI (Zadeh et al. 2016): opinion video segments with sentiment scores in [-3, 3].

Build commands::

  mmer data build cmu_mosi --config aligned --manual_dir ~/mosi --data_dir ~/tfds
  mmer data build cmu_mosi --config unaligned --manual_dir ~/mosi --data_dir ~/tfds

Manual download only: the raw videos are not redistributable, and the feature pickles are hosted on
Google Drive / Baidu links without published checksums, so no URL or hash is pinned here.
``--manual_dir`` must hold one of (see ``data_prep._common.mosi_pickle.find_pickle``):

* MulT: ``mosi_data.pkl`` (aligned) / ``mosi_data_noalign.pkl`` (unaligned), or
* MMSA: ``aligned_50.pkl`` / ``unaligned_50.pkl``, directly or under ``MOSI/Processed/``.

Fields: ``id`` (``video$_$segment``), ``dialogue_id`` (the source video), ``score`` (float32 in
[-3, 3]), ``label`` (binary polarity: ``positive`` when score >= 0, else ``negative``; the
negative/positive variant that drops score == 0 can be derived from ``score``), ``text_feat``,
``audio_feat``, ``vision_feat`` (float32 [T, D]; D depends on the release: MulT text is 300-d GloVe,
MMSA text 768-d BERT; aligned T = 50; MMSA unaligned sequences are cut to their stored lengths),
``text`` (MMSA raw transcript; empty for MulT, which has none). Non-finite feature values (``-inf``
in the audio features) are set to 0 and counted in the build report's ``notes.nonfinite_zeroed``.
Splits: the pickle's ``train`` / ``valid`` / ``test`` (standard folds: MOSI 52/10/31 videos, MOSEI
2,249/300/678); ``valid`` is stored as ``validation``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common import mosi_pickle as mp
from data_prep._common.report import CorpusError, ReportingMixin

_MOSI_CITATION = """@article{zadeh2016mosi,
  title={MOSI: Multimodal Corpus of Sentiment Intensity and Subjectivity Analysis in Online Opinion
         Videos}, author={Zadeh, Amir and Zellers, Rowan and Pincus, Eli and Morency,
         Louis-Philippe},
  journal={arXiv preprint arXiv:1606.06259}, year={2016}}"""


@dataclasses.dataclass
class MosiConfig(tfds.core.BuilderConfig):
    """``alignment``: "aligned" (word-aligned, T = 50) or "unaligned" (native frame rates)."""

    alignment: str = "aligned"


def _feat() -> tfds.features.Tensor:
    # D differs between releases (MulT GloVe 300 vs MMSA BERT 768), and the builder does not know
    # which file it gets until _split_generators, so both axes are left free.
    return tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib")


class MosiFamily(ReportingMixin, tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared builder for CMU-MOSI and CMU-MOSEI; subclasses set the name and metadata."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        MosiConfig(name="aligned", alignment="aligned",
                   description="Word-aligned features (T=50)."),
        MosiConfig(name="unaligned", alignment="unaligned", description="Unaligned features."),
    ]
    DEFAULT_CONFIG_NAME = "aligned"
    HOMEPAGE = ""
    CITATION = ""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "id": tfds.features.Text(),
                "dialogue_id": tfds.features.Text(),
                "score": F.scalar(np.float32),
                "label": tfds.features.ClassLabel(names=list(mp.POLARITY)),
                "text_feat": _feat(),
                "audio_feat": _feat(),
                "vision_feat": _feat(),
                "text": tfds.features.Text(),
            }),
            supervised_keys=None,
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
        )

    def _split_generators(self, dl_manager):
        root = str(self._manual_root(dl_manager))
        try:
            path, kind = mp.find_pickle(root, self.name, self.builder_config.alignment)
        except FileNotFoundError as exc:
            raise CorpusError(str(exc)) from exc
        self._pickle = mp.FeaturePickle(path, kind)
        self.report.notes.update(source=path, release=kind)
        return {s: self._generate_examples(s) for s in ("train", "validation", "test")}

    def _generate_examples(self, split: str):
        pk = self._pickle
        for i, clip in enumerate(pk.clips(split)):
            label = mp.polarity(clip.score)
            self.report.add(split, mp.POLARITY[label], clip.video)
            # The index keeps TFDS keys unique even if a release repeats an id.
            yield f"{i:06d}_{clip.id}", {
                "id": clip.id, "dialogue_id": clip.video, "score": np.float32(clip.score),
                "label": label, "text_feat": clip.text_feat, "audio_feat": clip.audio_feat,
                "vision_feat": clip.vision_feat, "text": clip.text,
            }
        self.report.notes["nonfinite_zeroed"] = dict(pk.nonfinite)
        self.report.notes["feature_dims"] = dict(pk.dims)


class CmuMosi(MosiFamily):
    """CMU-MOSI feature pickles; see the module docstring."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Manual download only (no pinned URL or checksum). Put MulT's mosi_data.pkl /
    mosi_data_noalign.pkl, or MMSA's MOSI/Processed/{aligned,unaligned}_50.pkl, in --manual_dir.
    """
    HOMEPAGE = "http://multicomp.cs.cmu.edu/resources/cmu-mosi-dataset/"
    CITATION = _MOSI_CITATION
