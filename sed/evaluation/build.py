"""Picks the evaluator of a test dataset from its metadata's evaluator_type."""
from detectron2.data import MetadataCatalog
from detectron2.evaluation import SemSegEvaluator

from .background_sem_seg_evaluation import BackgroundSemSegEvaluator

__all__ = ["build_sem_seg_evaluator"]

_EVALUATORS = {"sem_seg": SemSegEvaluator, "sem_seg_background": BackgroundSemSegEvaluator}


def build_sem_seg_evaluator(cfg, dataset_name: str, output_folder=None):
    """
    detectron2's SemSegEvaluator (mIoU over the dataset's stuff_classes, its ignore_label skipped) for
    evaluator_type "sem_seg", BackgroundSemSegEvaluator for "sem_seg_background". Results and predictions
    go to `output_folder` if given. `cfg` is accepted for detectron2's build_evaluator signature.

    detectron2's SemSegEvaluator reads ground truth with Pillow as int arrays, so 16-bit TIFFs with an ignore
    value above 255 (A-847: 65535, PC-459: 459) work unchanged; with 255 or more classes it skips its
    boundary IoU (which needs uint8 labels) by itself.
    """
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if evaluator_type not in _EVALUATORS:
        raise ValueError(f"dataset {dataset_name!r} has evaluator_type {evaluator_type!r}; "
                         f"supported: {sorted(_EVALUATORS)}")
    return _EVALUATORS[evaluator_type](dataset_name, distributed=True, output_dir=output_folder)
