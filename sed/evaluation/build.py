"""Picks the evaluator of a test dataset from its metadata's evaluator_type."""

from detectron2.data import MetadataCatalog

from .background_sem_seg_evaluation import BackgroundSemSegEvaluator
from .sem_seg_evaluation import CheckedSemSegEvaluator

__all__ = ["build_sem_seg_evaluator"]

_EVALUATORS = {
    "sem_seg": CheckedSemSegEvaluator,
    "sem_seg_background": BackgroundSemSegEvaluator,
    # detectron2's Cityscapes datasets (sed/data/datasets/register_cityscapes.py). Their label maps are trainIds
    # (19 classes, 255 ignored), so the plain evaluator gives the benchmark's 19-class mIoU, as mmsegmentation
    # computes it; detectron2's CityscapesSemSegEvaluator would need cityscapesscripts and labelIds files.
    "cityscapes_sem_seg": CheckedSemSegEvaluator,
}


def build_sem_seg_evaluator(cfg, dataset_name: str, output_folder=None):
    """
    detectron2's SemSegEvaluator (mIoU over the dataset's stuff_classes, its ignore_label skipped; here with a
    check of the predictions' class count) for evaluator_type "sem_seg" and "cityscapes_sem_seg",
    BackgroundSemSegEvaluator for "sem_seg_background". Results and predictions go to `output_folder` if given.
    `cfg` is accepted for detectron2's build_evaluator signature.

    detectron2's SemSegEvaluator reads ground truth with Pillow as int arrays, so 16-bit TIFFs with an ignore
    value above 255 (A-847: 65535, PC-459: 459) work unchanged; with 255 or more classes it skips its
    boundary IoU (which needs uint8 labels) by itself.
    """
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if evaluator_type not in _EVALUATORS:
        raise ValueError(
            f"dataset {dataset_name!r} has evaluator_type {evaluator_type!r}; supported: {sorted(_EVALUATORS)}"
        )
    return _EVALUATORS[evaluator_type](dataset_name, distributed=True, output_dir=output_folder)
