"""One process of the loopback multi-host test (tests/train/test_multihost.py): trains one epoch of
the tiny text model and writes its parameters and validation counts to ``<out>/proc<i>.npz``.

    python -m tests.train.multihost_worker OUT DATA_DIR RUN_DIR

Multi-process when the MMER_COORDINATOR variables are set (gloo CPU collectives).
"""

import os
import sys


def main(out: str, data_dir: str, run_dir: str) -> None:
    from mmer_jax.train.sharding import maybe_initialize_distributed

    maybe_initialize_distributed()
    import jax
    import numpy as np

    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.train.loop import VariantTrainer
    from tests.train.helpers import only_variant, tiny_config

    cfg = only_variant(tiny_config(data_dir, **{"train.batch_size": 8, "train.epochs": 1,
                                                "train.log_every": 2}), "text", ["text"])
    pipe = make_pipeline(cfg.data, ["text"], cfg.seed)  # no workdir: nothing written by data
    trainer = VariantTrainer(cfg, pipe, "text", ["text"], run_dir)
    state = trainer.train_epoch(trainer.init_state(), 0)
    val = trainer.evaluate(state.params, state.batch_stats, "validation")
    leaves = jax.tree.leaves(state.params)
    arrays = {f"p{i}": np.asarray(x.addressable_data(0)) for i, x in enumerate(leaves)}
    np.savez(os.path.join(out, f"proc{jax.process_index()}.npz"), **arrays,
             confusion=np.asarray(val["confusion"]), loss=np.float64(val["loss"]),
             devices=np.int64(jax.device_count()), hosts=np.int64(jax.process_count()))


if __name__ == "__main__":
    main(*sys.argv[1:4])
