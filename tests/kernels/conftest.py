"""Kernel tests: make the sibling helper module ``kernel_test_util`` importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
