"""CMU-MOSEI (Zadeh et al. 2018): 23k opinion segments from 1,000 speakers, sentiment in [-3, 3].

Build commands::

  mmer data build cmu_mosei --config aligned --manual_dir ~/mosei --data_dir ~/tfds
  mmer data build cmu_mosei --config unaligned --manual_dir ~/mosei --data_dir ~/tfds

Manual download only (no pinned URL or checksum). ``--manual_dir`` holds MulT's
``mosei_senti_data.pkl`` / ``mosei_senti_data_noalign.pkl`` or MMSA's ``aligned_50.pkl`` /
``unaligned_50.pkl`` (directly or under ``MOSEI/Processed/``). Fields, splits and cleaning are those
of :mod:`data_prep.cmu_mosi.cmu_mosi` (MulT MOSEI: audio 74-d COVAREP, vision 35-d Facet).
"""

from __future__ import annotations

from data_prep.cmu_mosi.cmu_mosi import MosiFamily

_CITATION = """@inproceedings{zadeh2018mosei,
  title={Multimodal Language Analysis in the Wild: CMU-MOSEI Dataset and Interpretable Dynamic
         Fusion Graph}, author={Zadeh, AmirAli Bagher and Liang, Paul Pu and Poria, Soujanya and
         Cambria, Erik and Morency, Louis-Philippe}, booktitle={ACL}, year={2018}}"""


class CmuMosei(MosiFamily):
    """CMU-MOSEI feature pickles; see the module docstring."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Manual download only (no pinned URL or checksum). Put MulT's mosei_senti_data.pkl /
    mosei_senti_data_noalign.pkl, or MMSA's MOSEI/Processed/{aligned,unaligned}_50.pkl, in
    --manual_dir.
    """
    HOMEPAGE = "http://multicomp.cs.cmu.edu/resources/cmu-mosei-dataset/"
    CITATION = _CITATION
