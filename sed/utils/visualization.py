"""Pictures of semantic segmentations: detectron2's coloured overlay, plus a legend of the classes present."""
import colorsys

import cv2
import numpy as np
from detectron2.data import Metadata
from detectron2.utils.visualizer import Visualizer

_GOLDEN_RATIO = 0.618033988749895


def display_name(class_name):
    """A class name as drawn: its first synonym ("grass, lawn" -> "grass")."""
    return class_name.split(", ")[0]


def class_colors(num_classes):
    """num_classes distinct RGB colours (0..255 ints), the same for the same vocabulary size.

    Hues advance by the golden ratio so that neighbouring labels differ strongly however many classes there
    are; saturation and brightness alternate to separate hues that come back close after many steps.
    """
    colors = []
    for i in range(num_classes):
        hue = (0.1 + i * _GOLDEN_RATIO) % 1.0
        saturation = 0.8 if i % 2 == 0 else 0.55
        value = 0.95 if (i // 2) % 2 == 0 else 0.75
        colors.append(tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, saturation, value)))
    return colors


def class_areas(label_map, num_classes):
    """[(label, share of the pixels)] of the labels present in a (H, W) label map, largest first (ties: by label)."""
    counts = np.bincount(label_map.ravel(), minlength=num_classes)
    order = np.argsort(-counts, kind="stable")
    return [(int(i), counts[i] / label_map.size) for i in order if counts[i]]


def draw_segmentation(image, label_map, class_names, alpha=0.5, legend=True, max_legend_rows=20):
    """An overlay of a segmentation on its image (each region named), with a legend of the classes present.

    Args:
        image: (H, W, 3) uint8 RGB image.
        label_map: (H, W) int labels into `class_names`, at the image's size.
        class_names: the T class names of the vocabulary.
        alpha: opacity of the class colours.
        legend: add the legend on the right (with its share of the image for each class).
        max_legend_rows: the legend lists at most this many classes (the largest); one more row counts the rest.
    Returns:
        (max(H, legend height), W + legend width, 3) uint8 RGB picture; (H, W, 3) without legend.
    """
    if label_map.shape != image.shape[:2]:
        raise ValueError(f"label map {label_map.shape} and image {image.shape[:2]} differ in size.")
    colors = class_colors(len(class_names))
    metadata = Metadata(stuff_classes=[display_name(n) for n in class_names], stuff_colors=colors)
    overlay = Visualizer(image, metadata).draw_sem_seg(label_map, alpha=alpha).get_image()
    if not legend:
        return overlay
    rows = [(colors[label], f"{display_name(class_names[label])} {100 * share:.1f}%")
            for label, share in class_areas(label_map, len(class_names))]
    if len(rows) > max_legend_rows:
        rows = rows[:max_legend_rows] + [(None, f"+ {len(rows) - max_legend_rows} more")]
    return _append_legend(overlay, rows)


def _append_legend(picture, rows):
    """`picture` with a white panel on its right listing (colour or None, text) rows."""
    height = picture.shape[0]
    # Row height follows the picture so that the legend stays readable next to large and small images.
    row_height = max(16, round(min(picture.shape[:2]) / 25))
    font_scale = row_height / 36
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    margin = row_height // 2
    text_width = max(cv2.getTextSize(text, font, font_scale, thickness)[0][0] for _, text in rows)
    panel = np.full((max(height, 2 * margin + len(rows) * row_height), 3 * margin + row_height + text_width, 3),
                    255, np.uint8)
    for i, (color, text) in enumerate(rows):
        top = margin + i * row_height
        swatch = (margin, top + 2), (margin + row_height - 4, top + row_height - 2)
        if color is not None:
            cv2.rectangle(panel, *swatch, color, cv2.FILLED)
            cv2.rectangle(panel, *swatch, (80, 80, 80), 1)
        baseline = top + (row_height + cv2.getTextSize(text, font, font_scale, thickness)[0][1]) // 2
        cv2.putText(panel, text, (2 * margin + row_height, baseline), font, font_scale, (0, 0, 0), thickness,
                    cv2.LINE_AA)
    canvas = np.full((panel.shape[0], picture.shape[1] + panel.shape[1], 3), 255, np.uint8)
    canvas[:height, :picture.shape[1]] = picture
    canvas[:, picture.shape[1]:] = panel
    return canvas
