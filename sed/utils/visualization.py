"""Pictures of semantic segmentations: detectron2's coloured overlay, plus a legend of the classes present.

Text is drawn in DejaVu Sans (the font matplotlib, and so detectron2's overlay, draws with), which covers
accented Latin, Greek and Cyrillic; names are shortened to MAX_NAME_CHARS characters in the picture.
"""

import colorsys
import functools

import numpy as np
from detectron2.data import Metadata
from detectron2.utils.visualizer import Visualizer
from PIL import Image, ImageDraw, ImageFont

_GOLDEN_RATIO = 0.618033988749895
MAX_NAME_CHARS = 40  # longer class names are cut (with "...") in pictures; summaries keep them whole


def display_name(class_name):
    """A class name as drawn: its first synonym ("grass, lawn" -> "grass"), cut to MAX_NAME_CHARS characters."""
    name = class_name.split(", ")[0]
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "\u2026"


@functools.lru_cache(maxsize=8)
def _font(size):
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


class _Visualizer(Visualizer):
    """detectron2's Visualizer with every region name inside the picture: it centres a name on its region, so a
    name wider than the space to the picture's edge ran off it."""

    def draw_text(self, text, position, *args, **kwargs):
        output = super().draw_text(text, position, *args, **kwargs)
        label = self.output.ax.texts[-1]
        box = label.get_window_extent(renderer=self.output.fig.canvas.get_renderer())
        width, height = self.output.fig.canvas.get_width_height()
        # Display coordinates (pixels, y up); a text wider than the picture starts at its left edge.
        dx = max(-box.x0, min(0.0, width - box.x1))
        dy = max(-box.y0, min(0.0, height - box.y1))
        x, y = label.get_position()
        label.set_position((x + dx / self.output.scale, y - dy / self.output.scale))
        return output


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
    overlay = _Visualizer(image, metadata).draw_sem_seg(label_map, alpha=alpha).get_image()
    if not legend:
        return overlay
    rows = [
        (colors[label], f"{display_name(class_names[label])} {100 * share:.1f}%")
        for label, share in class_areas(label_map, len(class_names))
    ]
    if len(rows) > max_legend_rows:
        rows = rows[:max_legend_rows] + [(None, f"+ {len(rows) - max_legend_rows} more")]
    return _append_legend(overlay, rows)


def _append_legend(picture, rows):
    """`picture` with a white panel on its right listing (colour or None, text) rows."""
    height = picture.shape[0]
    # Row height follows the picture so that the legend stays readable next to large and small images.
    row_height = max(16, round(min(picture.shape[:2]) / 25))
    font = _font(max(8, round(row_height * 0.6)))
    margin = row_height // 2
    text_width = max(round(font.getlength(text)) for _, text in rows)
    panel = Image.new(
        "RGB", (3 * margin + row_height + text_width, max(height, 2 * margin + len(rows) * row_height)), (255, 255, 255)
    )
    draw = ImageDraw.Draw(panel)
    for i, (color, text) in enumerate(rows):
        top = margin + i * row_height
        if color is not None:
            draw.rectangle(
                (margin, top + 2, margin + row_height - 4, top + row_height - 2),
                fill=tuple(color),
                outline=(80, 80, 80),
            )
        draw.text((2 * margin + row_height, top + row_height / 2), text, font=font, fill=(0, 0, 0), anchor="lm")
    canvas = np.full((panel.height, picture.shape[1] + panel.width, 3), 255, np.uint8)
    canvas[:height, : picture.shape[1]] = picture
    canvas[:, picture.shape[1] :] = np.asarray(panel)
    return canvas
