"""ADE20K-847 (A-847): the validation set of the full ADE20K over its 847 frequent classes."""

from .register_sem_seg import register_sem_seg_dataset

register_sem_seg_dataset(
    "ade20k_full_sem_seg_freq_val_all",
    image_dirname="ADE20K_2021_17_01/images_detectron2/validation",
    sem_seg_dirname="ADE20K_2021_17_01/annotations_detectron2/validation",
    class_json="datasets/ade847.json",
    # 847 labels need 16 bits; the preparation writes uint16 TIFFs with this ignore value.
    ignore_label=65535,
    prepare_script="prepare_ade20k_full.py",
    gt_ext="tif",
)
