"""The authors' reference-output fixture (`tests/fixtures/sed_parity_tiny.pt`): known weights on a tiny CLIP, their
config overrides, vocabulary and outputs. `ParityFixture` builds SED models of it the public way
(configs/convnextB_768.yaml + overrides, `build_model`, `DetectionCheckpointer`), for the parity tests and
`tools/compare_precision.py`."""

import json
import os

import torch

__all__ = ["ParityFixture"]

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "convnextB_768.yaml")


class ParityFixture:
    """Registers the fixture's open_clip config and writes its vocabulary and released-format checkpoint to
    `workdir` (a folder that lives as long as the models); `fixture[key]` reads the fixture's entries."""

    def __init__(self, path, workdir, device="cpu"):
        import open_clip

        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} is missing: the repository carries it (git checkout it).")
        self.data = torch.load(path, map_location="cpu", weights_only=True)
        self.device = device
        with open(os.path.join(workdir, f"{self.data['open_clip_model_name']}.json"), "w") as f:
            json.dump(self.data["open_clip_model_config"], f)
        open_clip.add_model_config(workdir)
        self.vocabulary = os.path.join(workdir, "vocab.json")
        with open(self.vocabulary, "w") as f:
            json.dump(self.data["class_names"], f)
        self.checkpoint = os.path.join(workdir, "official.pth")
        torch.save(self.data["checkpoint"], self.checkpoint)

    def __getitem__(self, key):
        return self.data[key]

    def opts(self, fast=False, extra=()):
        """Config overrides [KEY, VALUE, ...]: the fixture's, its vocabulary, the device, then `extra`."""
        opts = []
        for k, v in self.data["config_overrides"].items():
            opts += [k, v if isinstance(v, str) else str(v)]
        return opts + [
            "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON",
            self.vocabulary,
            "MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON",
            self.vocabulary,
            "MODEL.DEVICE",
            self.device,
            "MODEL.ENC.TEXT_EMBEDDING_CACHE_DIR",
            "",
            "TEST.FAST_INFERENCE",
            str(fast),
            *extra,
        ]

    def build(self, fast=False, extra=(), load=True, seed=None):
        """The model in eval mode: with the fixture's weights (`load`), else its initialisation (seeded if `seed`
        is given)."""
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.modeling import build_model

        from ..config import load_config

        cfg = load_config(CONFIG, self.opts(fast, extra))
        cfg.freeze()
        if seed is not None:
            torch.manual_seed(seed)
        model = build_model(cfg)
        if load:
            DetectionCheckpointer(model).load(self.checkpoint)
        return model.eval()

    def input(self, **kwargs):
        """detectron2's input dict of the fixture's image (a copy)."""
        return {
            "image": self.data["image"].clone(),
            "height": self.data["height"],
            "width": self.data["width"],
            **kwargs,
        }
