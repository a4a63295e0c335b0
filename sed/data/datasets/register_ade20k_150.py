"""ADE20K-150 (A-150): validation is the benchmark, training is used by closed-vocabulary models."""

from .register_sem_seg import register_sem_seg_dataset

for _name, _split in (("ade20k_150_train_sem_seg", "training"), ("ade20k_150_test_sem_seg", "validation")):
    register_sem_seg_dataset(
        _name,
        image_dirname=f"ADEChallengeData2016/images/{_split}",
        sem_seg_dirname=f"ADEChallengeData2016/annotations_detectron2/{_split}",
        class_json="datasets/ade150.json",
        ignore_label=255,
        prepare_script="prepare_ade20k_150.py",
    )
