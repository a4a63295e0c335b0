"""PASCAL Context: PC-59 (val is the benchmark, train is used by closed-vocabulary models) and PC-459 (val)."""

from .register_sem_seg import register_sem_seg_dataset

for _name, _split in (("context_59_train_sem_seg", "train"), ("context_59_test_sem_seg", "val")):
    register_sem_seg_dataset(
        _name,
        image_dirname="VOCdevkit/VOC2010/JPEGImages",
        sem_seg_dirname=f"VOCdevkit/VOC2010/annotations_detectron2/pc59_{_split}",
        class_json="datasets/pc59.json",
        ignore_label=255,
        prepare_script="prepare_pascal_context_59.py",
    )

register_sem_seg_dataset(
    "context_459_test_sem_seg",
    image_dirname="VOCdevkit/VOC2010/JPEGImages",
    sem_seg_dirname="VOCdevkit/VOC2010/annotations_detectron2/pc459_val",
    class_json="datasets/pc459.json",
    # One past the last class, as the benchmark is registered; the labels are 16-bit TIFFs.
    ignore_label=459,
    prepare_script="prepare_pascal_context_459.py",
    gt_ext="tif",
)
