"""Systems fitted by trainers of their own instead of the jitted gradient loop: a non-gradient
system (``survey_text``) and a two-stage one (``s004_hybrid``: classifiers on the features of two
finished encoder runs). Importing this package registers them in ``registry.SYSTEMS``.

Each system is one package: ``system.py`` (its ``model`` section, registered with the
``"module:attribute"`` of its trainer, evaluator, predictor and, when its report has tables of
its own, reporter: :class:`mmer_jax.registry.System`), and those modules beside it. ``mmer
train``, ``mmer eval``, ``mmer predict`` / ``serve`` and ``mmer reproduce`` look them up in the
registry, so no command names a system. ``system.py`` imports neither scikit-learn nor the
trainer, so registering costs nothing.

To add one: a package here with ``system.py`` and the parts it replaces, and one import line
below.
"""

from mmer_jax.fitted.s004_hybrid import system as _s004_hybrid  # noqa: F401
from mmer_jax.fitted.survey_text import system as _survey_text  # noqa: F401
