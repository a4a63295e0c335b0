"""COCO-Stuff-171: SED's training set (train2017) and its validation set (val2017)."""

from .register_sem_seg import register_sem_seg_dataset

for _name, _split in (
    ("coco_2017_train_stuff_all_sem_seg", "train2017"),
    ("coco_2017_test_stuff_all_sem_seg", "val2017"),
):
    register_sem_seg_dataset(
        _name,
        image_dirname=f"coco-stuff/images/{_split}",
        sem_seg_dirname=f"coco-stuff/annotations_detectron2/{_split}",
        class_json="datasets/coco.json",
        ignore_label=255,
        prepare_script="prepare_coco_stuff.py",
    )
