"""The zoo's entries: released weights by short name.

An entry says what a name downloads and what is known about the file. Sizes and checksums are filled in once
someone has downloaded the file and checked it; until then they are None and the download is accepted as it
comes (the authors publish no checksums).
"""

import dataclasses
from typing import Optional

__all__ = ["MODEL_ZOO", "Checkpoint", "ClipWeights", "get_entry", "zoo_names"]


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file for MODEL.WEIGHTS, downloaded into the cache (`sed.model_zoo.download`).

    url: where it is downloaded from: http(s), or a Google Drive file link (needs the `zoo` extra, gdown).
    filename: its name in the cache folder (`<cache>/checkpoints/<filename>`).
    size: bytes, or None when not yet known; sha256: hex digest, or None when not yet known.
    config: the config it belongs to; source: the page that publishes it.
    """

    name: str
    description: str
    url: str
    filename: str
    config: str
    source: str
    size: Optional[int] = None
    sha256: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ClipWeights:
    """open_clip pretrained weights (MODEL.ENC.CLIP_PRETRAINED_WEIGHTS), fetched and cached by open_clip itself
    (`sed.model_zoo.clip`): only training from CLIP needs them, the released SED checkpoints carry CLIP.

    approx_size: bytes of the model's float32 tensors (counted from the released SED checkpoints' key lists),
    about the size of the hub's file.
    """

    name: str
    description: str
    clip_model: str
    tag: str
    hf_repo: str
    approx_size: int
    configs: tuple


_SED_SOURCE = "https://github.com/xb534/SED#results"

MODEL_ZOO = {
    entry.name: entry
    for entry in [
        Checkpoint(
            name="sed-b",
            description="SED (B), ConvNeXt-B CLIP, trained on COCO-Stuff (the authors' release); "
            "SED-fast (B) is the same file with TEST.FAST_INFERENCE True TEST.TOPK 8",
            url="https://drive.google.com/file/d/1qx6zGZgSPkF6TObregRz4uzQqSRHrgUw/view",
            filename="sed_b_convnextB_768.pth",
            config="configs/convnextB_768.yaml",
            source=_SED_SOURCE,
        ),
        Checkpoint(
            name="sed-l",
            description="SED (L), ConvNeXt-L CLIP, trained on COCO-Stuff (the authors' release); "
            "SED-fast (L) is the same file with TEST.FAST_INFERENCE True TEST.TOPK 8",
            url="https://drive.google.com/file/d/1zAXE0QXy47n0cVn7j_2cSR85eqxdDGg8/view",
            filename="sed_l_convnextL_768.pth",
            config="configs/convnextL_768.yaml",
            source=_SED_SOURCE,
        ),
        ClipWeights(
            name="clip-b",
            description="open_clip ConvNeXt-B (w, 320 px) CLIP, LAION-Aesthetic: SED-B's encoder",
            clip_model="convnext_base_w_320",
            tag="laion_aesthetic_s13b_b82k",
            hf_repo="laion/CLIP-convnext_base_w_320-laion_aesthetic-s13B-b82K",
            approx_size=717_541_380,
            configs=("configs/convnextB_768.yaml",),
        ),
        ClipWeights(
            name="clip-l",
            description="open_clip ConvNeXt-L (d, 320 px) CLIP, LAION-2B fine-tuned soup: SED-L's encoder",
            clip_model="convnext_large_d_320",
            tag="laion2b_s29b_b131k_ft_soup",
            hf_repo="laion/CLIP-convnext_large_d_320.laion2B-s29B-b131K-ft-soup",
            approx_size=1_407_090_436,
            configs=("configs/convnextL_768.yaml",),
        ),
    ]
}


def zoo_names(kind=None):
    """The names of the zoo (of one entry class, e.g. `Checkpoint`), sorted."""
    return sorted(name for name, entry in MODEL_ZOO.items() if kind is None or isinstance(entry, kind))


def get_entry(name):
    """The entry of `name`; KeyError with the known names otherwise."""
    try:
        return MODEL_ZOO[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the model zoo (names: {', '.join(zoo_names())}; MODEL_ZOO.md)") from None
