"""The quickstart (``experiments/quickstart.py``) under the name ``mmer reproduce`` looks for, so

    mmer reproduce quickstart --corpus generated --seeds 3

trains it over seeds and reports mean ± std (``mmer reproduce quickstart`` alone also tries the
CMU-MOSI/MOSEI feature-stream quickstarts, skipping those whose data is absent).
"""

import ml_collections

from experiments import quickstart


def get_config() -> ml_collections.ConfigDict:
    return quickstart.get_config()
