"""Two CPU processes (gloo) train the tiny model under DistributedDataParallel and end with identical weights."""
import os

import pytest
import torch
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng

from engine_helpers import quickstart_cfg, synthetic_root  # noqa: F401 (fixture)
from sed.engine import Trainer, launch
from sed.modeling.protocol import unwrap_model


def _worker(output_dir, datasets_root):
    os.environ["DETECTRON2_DATASETS"] = datasets_root
    cfg = quickstart_cfg("MODEL.DEVICE", "cpu", "SOLVER.IMS_PER_BATCH", "4", "SOLVER.MAX_ITER", "2",
                         "DATASETS.TEST", "()", "OUTPUT_DIR", output_dir)
    seed_all_rng(100 + comm.get_rank())  # different initial weights per rank: DDP must broadcast rank 0's
    trainer = Trainer(cfg)
    assert comm.get_world_size() == 2 and torch.distributed.get_backend() == "gloo"
    assert len(next(iter(trainer.data_loader))) == 2, "per-process batch = IMS_PER_BATCH / world size"
    trainer.resume_or_load(resume=False)
    trainer.train()
    torch.save(unwrap_model(trainer.model).state_dict(), os.path.join(output_dir, f"rank{comm.get_rank()}.pth"))


@pytest.mark.slow
def test_two_cpu_processes_hold_identical_weights(tmp_path, synthetic_root):  # noqa: F811
    launch(_worker, 2, dist_url="auto", args=(str(tmp_path), str(synthetic_root)), use_gpu=False)
    rank0 = torch.load(tmp_path / "rank0.pth")
    rank1 = torch.load(tmp_path / "rank1.pth")
    assert rank0.keys() == rank1.keys()
    different = [k for k in rank0 if not torch.equal(rank0[k], rank1[k])]
    assert not different, f"ranks differ: {different[:5]}"
    assert (tmp_path / "model_final.pth").is_file()  # rank 0 checkpoints
