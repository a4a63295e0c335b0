"""Adding a model touches nothing shared (docs/ARCHITECTURE.md): a toy open-vocabulary model, registered here through
detectron2's registry and the model protocol only, trains, is evaluated as eval.sh would (plan, periodic
evaluation, --eval-only) and segments images with the demo, with the engine, the predictor and the demo as they
are."""

import json
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import load_tool, miou_by_hand
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from engine_helpers import FAST_OPTS, REPO, one_thread, synthetic_root  # noqa: F401 (fixtures)
from PIL import Image
from torch import nn

from sed.engine import Trainer
from sed.engine.cli import load_config, run
from sed.engine.eval_suite import config_words, evaluation_plan
from sed.modeling.protocol import SegmentationModel, capabilities
from sed.utils import class_names

PIXEL_LR = 0.5


@META_ARCH_REGISTRY.register()
class ToyOpenVocabulary(SegmentationModel, nn.Module):
    """Per-pixel features (1x1 conv of the RGB values) scored (x a learnt scale) against a fixed random embedding of
    each class name, so it takes any vocabulary. Training: cross-entropy over the training vocabulary."""

    open_vocabulary = True

    @configurable
    def __init__(self, *, train_class_names, test_class_names, ignore_value=255, dim=8):
        super().__init__()
        self.pixels = nn.Conv2d(3, dim, 1)
        self.scale = nn.Parameter(torch.ones(()))
        self.train_class_names, self.test_class_names = list(train_class_names), list(test_class_names)
        self.ignore_value, self.dim = ignore_value, dim

    @classmethod
    def from_config(cls, cfg):
        return {
            "train_class_names": class_names.load_class_names(cfg.MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON),
            "test_class_names": class_names.test_vocabulary(cfg, cfg.DATASETS.TEST[0]),
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
        }

    def lr_multiplier(self, param_name):
        return PIXEL_LR if param_name.startswith("pixels.") else 1.0

    def benchmark_parts(self):
        return {"pixels": (self.pixels, ["forward"])}

    def _logits(self, image, class_names):
        """(T, H, W) scores of a (3, H, W) 0..255 image."""
        embeddings = torch.stack(
            [
                torch.randn(self.dim, generator=torch.Generator().manual_seed(zlib.crc32(n.encode())))
                for n in class_names
            ]
        ).to(image.device)
        return self.scale * torch.einsum("chw,tc->thw", self.pixels(image[None].float() / 255 - 0.5)[0], embeddings)

    def forward(self, batched_inputs):
        device = self.pixels.weight.device
        if self.training:
            loss = sum(
                F.cross_entropy(
                    self._logits(x["image"].to(device), self.train_class_names)[None],
                    x["sem_seg"][None].to(device),
                    ignore_index=self.ignore_value,
                )
                for x in batched_inputs
            )
            return {"loss_sem_seg": loss / len(batched_inputs)}
        results = []
        for x in batched_inputs:
            prob = self._logits(x["image"].to(device), self.test_class_names).softmax(0)
            size = (x.get("height", prob.shape[1]), x.get("width", prob.shape[2]))
            results.append({"sem_seg": F.interpolate(prob[None], size=size, mode="bilinear")[0]})
        return results


OPTS = ["MODEL.META_ARCHITECTURE", "ToyOpenVocabulary", *FAST_OPTS]


def test_a_third_model_trains_evaluates_and_segments(tmp_path, monkeypatch, synthetic_root, one_thread):  # noqa: F811
    out = tmp_path / "train"
    cfg = load_config(
        str(REPO / "configs" / "quickstart.yaml"),
        [*OPTS, "SOLVER.MAX_ITER", "3", "SOLVER.CHECKPOINT_PERIOD", "100", "OUTPUT_DIR", str(out)],
    )
    cfg.freeze()
    assert capabilities(cfg) is ToyOpenVocabulary  # read through the registry

    trainer = Trainer(cfg)
    lrs = {g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs == {cfg.SOLVER.BASE_LR * PIXEL_LR, cfg.SOLVER.BASE_LR}  # the model's lr multipliers
    before = trainer.model.pixels.weight.detach().clone()
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert not torch.equal(before, trainer.model.pixels.weight), "training changed the weights"
    periodic = trainer._last_eval_results["sem_seg"]  # the evaluation at the end of training
    # the trained model's predictions on the test set, scored here from the label files
    assert periodic["mIoU"] == pytest.approx(miou_by_hand(trainer.model, cfg, "synthetic_test_sem_seg"), abs=1e-9)

    [(name, settings)] = evaluation_plan(cfg)  # an open-vocabulary model on its config's own test set
    assert name == "synthetic_test_sem_seg"
    eval_dir = tmp_path / "eval" / name
    argv = [
        "--config-file",
        str(REPO / "configs" / "quickstart.yaml"),
        "--eval-only",
        *OPTS,
        *config_words(settings),
        "OUTPUT_DIR",
        str(eval_dir),
        "MODEL.WEIGHTS",
        str(out / "model_final.pth"),
    ]
    evaluated_models = []
    test = Trainer.test.__func__

    def recording_test(cls, cfg, model, *args, **kwargs):
        evaluated_models.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return test(cls, cfg, model, *args, **kwargs)

    monkeypatch.setattr(Trainer, "test", classmethod(recording_test))
    assert run(argv) == 0
    # --eval-only evaluated the trained weights (saved in model_final.pth), hence the same predictions
    [weights] = evaluated_models
    trained = trainer.model.state_dict()
    assert weights.keys() == trained.keys() and all(torch.equal(weights[k], trained[k]) for k in trained)
    final = json.loads((eval_dir / "results.json").read_text())[name]["sem_seg"]
    assert final["mIoU"] == pytest.approx(periodic["mIoU"], abs=1e-9)

    demo = load_tool("demo")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    status = demo.main(
        [
            "--config-file",
            "configs/quickstart.yaml",
            "--input",
            str(tmp_path / "a.png"),
            "--vocabulary",
            "sky, grass/lawn, red car",
            "--output",
            str(tmp_path / "demo"),
            "--opts",
            *OPTS,
            "MODEL.WEIGHTS",
            str(out / "model_final.pth"),
        ]
    )
    assert status == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["class_names"] == ["sky", "grass, lawn", "red car"] and not summary["fast_inference"]
    [entry] = summary["images"]
    assert {c["name"] for c in entry["classes"]} <= {"sky", "grass, lawn", "red car"}


def test_the_speed_benchmark_times_a_third_model_by_its_parts(tmp_path, synthetic_root, one_thread):  # noqa: F811
    out = tmp_path / "speed.json"
    assert (
        load_tool("benchmark").main(
            [
                "--config-file",
                str(REPO / "configs" / "quickstart.yaml"),
                "--vocabulary",
                "5",
                "--iters",
                "1",
                "--warmup",
                "0",
                "--skip-startup",
                "--image-size",
                "32",
                "40",
                "--output",
                str(out),
                "--opts",
                *OPTS,
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["config"]["model"] == "ToyOpenVocabulary" and result["config"]["num_classes"] == 5
    assert set(result["latency_ms"]) == {"pixels", "pre_post_processing", "total"}
    assert 0 < result["latency_ms"]["pixels"]["median"] <= result["latency_ms"]["total"]["median"]
    assert result["flops"]["model_gflops"] > 0
