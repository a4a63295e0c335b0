"""PASCAL VOC 2012 val: PAS-20 (20 object classes, background ignored) and PAS-20b (with background)."""

from ...utils.class_names import load_class_names
from .register_sem_seg import register_sem_seg_dataset

register_sem_seg_dataset(
    "voc_2012_test_sem_seg",
    image_dirname="VOCdevkit/VOC2012/JPEGImages",
    sem_seg_dirname="VOCdevkit/VOC2012/annotations_detectron2/val",
    class_json="datasets/voc20.json",
    ignore_label=255,
    prepare_script="prepare_voc.py",
)

# PAS-20b evaluates 21 labels (background = 20), but the model is given voc20b.json: the 20 classes then 39
# PASCAL Context classes that together stand for "background" (see BackgroundSemSegEvaluator).
register_sem_seg_dataset(
    "voc_2012_test_background_sem_seg",
    image_dirname="VOCdevkit/VOC2012/JPEGImages",
    sem_seg_dirname="VOCdevkit/VOC2012/annotations_detectron2_bg/val",
    class_json="datasets/voc20b.json",
    stuff_classes=load_class_names("datasets/voc20.json") + ["background"],
    ignore_label=255,
    evaluator_type="sem_seg_background",
    prepare_script="prepare_voc.py",
)
