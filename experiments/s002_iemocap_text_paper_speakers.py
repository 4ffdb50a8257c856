"""S002's paper text path plus the paper's per-speaker context, on the IEMOCAP transcripts.

    mmer train --config experiments/s002_iemocap_text_paper_speakers.py --workdir runs/s002_spk
    mmer reproduce s002 --corpus iemocap_text_paper_speakers --seeds 3
    # the control below: --config.model.max_speakers=1 (needs another --workdir)

Everything of ``s002_iemocap_text_paper.py`` (same protocol: COSMIC lists, 108/12 train/validation
dialogues of sessions 1-4, 31 test dialogues of session 5, epoch selected on validation weighted
F1, test scored once), plus ``model.speaker_context``: a second 2-layer Bi-LSTM, shared by the two
speakers, runs over each speaker's own turns, and its outputs are concatenated to the dialogue
Bi-LSTM's before ``LayerNorm(F + MHA(F))``. This is our reading of the paper's problem
definition (Section 3.1, Eq. 1), which gives each speaker lambda a context set Y_lambda of that
speaker's earlier turns within a window H; its method section (Section 4) names no layer for it.
H is not given, so each speaker's whole turn sequence is read, in both directions and including
the current turn, the way the dialogue Bi-LSTM reads the whole dialogue; each turn gets its own
speaker's context only. IEMOCAP dialogues have two speakers; on a multi-party corpus, speakers
past ``model.max_speakers`` (2) share the last one's context.

Why it is a separate config: ``s002_iemocap_text_paper.py`` is also the model that
``benchmarks/train_compare_torch.py`` times against a PyTorch twin, and its report is kept as the
path without speakers.

Finding (3 seeds, CPU, ``reproductions/s002/iemocap_text_paper_speakers.md``): validation
weighted F1 60.1, 61.6, 61.1 (mean 60.9, against 53.0 for the paper path without speakers), test
weighted F1 61.6 ± 0.9 (60.5, 62.4, 61.8) and accuracy 61.6 ± 1.0, against the paper's 61.0 /
61.7 and the paper path's 59.8 ± 1.6 / 60.3 ± 0.9. Control, 3 seeds: the same second Bi-LSTM with
every turn counted as one speaker's (``model.max_speakers = 1``: same parameters, same inputs)
gave validation 52.7, 53.1, 52.7 (mean 52.8; test 60.4 ± 1.1), so on validation the gain comes
from keeping each speaker's turns apart, not from the extra Bi-LSTM. On test the gains are
smaller: +1.8 over the paper path, +1.2 over the control (within the spread of 3 seeds), against
+7.9 on the 12 validation dialogues, which also choose the epoch. Three seeds took 1 h 45 min of
CPU time on this 2-core machine (``--launcher local --jobs 3``, about 40 min of wall time).
"""

import ml_collections

from experiments import s002_iemocap_text_paper


def get_config() -> ml_collections.ConfigDict:
    cfg = s002_iemocap_text_paper.get_config()
    cfg.model.speaker_context = True
    return cfg
