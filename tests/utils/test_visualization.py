import numpy as np
import pytest

from sed.utils.visualization import class_areas, class_colors, display_name, draw_segmentation


def blocks(labels, size=20):
    """A label map of size x size blocks with the given (rows, cols) labels."""
    return np.kron(np.asarray(labels, np.int32), np.ones((size, size), np.int32))


def test_overlay_keeps_the_image_size_and_the_legend_lists_only_present_classes():
    label_map = blocks([[0, 0, 2], [0, 2, 2]])
    image = np.full((*label_map.shape, 3), 128, np.uint8)
    names = ["cat", "dog", "grass, lawn"]
    plain = draw_segmentation(image, label_map, names, legend=False)
    assert plain.shape == image.shape and plain.dtype == np.uint8 and not np.array_equal(plain, image)
    with_legend = draw_segmentation(image, label_map, names)
    assert with_legend.shape[0] >= image.shape[0] and with_legend.shape[1] > image.shape[1]
    np.testing.assert_array_equal(with_legend[: image.shape[0], : image.shape[1]], plain)
    # the legend has the colour swatches of cat and grass, not of dog
    legend = with_legend[:, image.shape[1] :].reshape(-1, 3)
    present = {tuple(c) for c in np.unique(legend, axis=0)}
    colors = class_colors(3)
    assert colors[0] in present and colors[2] in present and colors[1] not in present
    with pytest.raises(ValueError, match="differ in size"):
        draw_segmentation(image[:10], label_map, names)


def test_a_long_legend_is_cut_with_a_count_of_the_rest():
    label_map = blocks(np.arange(30).reshape(5, 6), size=8)
    image = np.zeros((*label_map.shape, 3), np.uint8)
    short = draw_segmentation(image, label_map, [f"c{i}" for i in range(30)], max_legend_rows=5)
    full = draw_segmentation(image, label_map, [f"c{i}" for i in range(30)], max_legend_rows=30)
    assert short.shape[0] < full.shape[0]


def test_colors_are_distinct_and_areas_sorted():
    assert len(set(class_colors(300))) == 300
    assert class_areas(blocks([[1, 1, 3, 0]]), 5) == [(1, 0.5), (0, 0.25), (3, 0.25)]  # ties: label order
    assert display_name("grass, lawn") == "grass"


def test_non_ascii_names_are_drawn_and_long_names_are_cut():
    label_map = blocks([[0, 1]])
    image = np.full((*label_map.shape, 3), 128, np.uint8)
    cyrillic = draw_segmentation(image, label_map, ["кошка", "собака"])
    question_marks = draw_segmentation(image, label_map, ["?????", "??????"])
    assert not np.array_equal(cyrillic, question_marks)
    wide = draw_segmentation(image, label_map, ["x" * 10000, "dog"])
    assert wide.shape[1] < image.shape[1] + 600
    assert display_name("x" * 10000) == "x" * 39 + "\u2026"


def test_region_names_stay_inside_the_picture():
    from detectron2.data import Metadata

    from sed.utils.visualization import _Visualizer

    label_map = blocks([[0, 1, 1, 1, 1, 1, 1]], size=40)  # class 0 at the left edge, with a long name
    image = np.full((*label_map.shape, 3), 128, np.uint8)
    visualizer = _Visualizer(
        image, Metadata(stuff_classes=["a rather long class name", "b"], stuff_colors=[(255, 0, 0), (0, 255, 0)])
    )
    visualizer.draw_sem_seg(label_map)
    renderer = visualizer.output.fig.canvas.get_renderer()
    width, height = visualizer.output.fig.canvas.get_width_height()
    boxes = [text.get_window_extent(renderer=renderer) for text in visualizer.output.ax.texts]
    assert len(boxes) == 2
    assert all(-0.5 <= b.x0 and b.x1 <= width + 0.5 and -0.5 <= b.y0 and b.y1 <= height + 0.5 for b in boxes)
