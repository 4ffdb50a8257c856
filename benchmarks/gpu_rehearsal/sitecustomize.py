"""Start-up hook of a GPU-machine rehearsal: with ``MMER_GPU_MACHINE_ONLY=1`` and this folder on
``PYTHONPATH``, every process imports only what the GPU machine has (benchmarks/gpu_machine.py).
"""

import os
import sys

if os.environ.get("MMER_GPU_MACHINE_ONLY") == "1":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import gpu_machine

    gpu_machine.install()
    sys.path.pop(0)
