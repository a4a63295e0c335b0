"""What the page shows: previews that fit, names inside their regions, a legend without the tiny classes."""

import base64
import io

import numpy as np
from PIL import Image

from sed.utils.visualization import class_colors
from sed.web.render import LEGEND_MIN_SHARE, color_mask, name_positions, nearest_labels, result_card


def test_name_of_a_curved_region_is_placed_inside_it():
    labels = np.zeros((100, 100), np.int32)
    labels[10:90, 10:30] = 1  # a "C": its centre of mass lies outside it
    labels[10:30, 10:90] = 1
    labels[70:90, 10:90] = 1
    ((x, y),) = name_positions(labels, [1]).values()
    assert labels[int(y * 100), int(x * 100)] == 1


def test_nearest_labels_never_mixes_labels():
    labels = np.random.default_rng(0).integers(0, 5, (333, 777))
    small = nearest_labels(labels, (100, 200))
    assert small.shape == (100, 200) and set(np.unique(small)) <= set(range(5))


def test_mask_colours_are_the_legends_above_256_classes_too():
    labels = np.arange(300).reshape(10, 30)
    assert np.array_equal(np.asarray(color_mask(labels, 300)), np.asarray(class_colors(300), np.uint8)[labels])
    assert np.array_equal(
        np.asarray(color_mask(labels % 8, 8).convert("RGB")), np.asarray(class_colors(8), np.uint8)[labels % 8]
    )


def test_card_lists_classes_above_the_threshold_and_escapes_names():
    image = np.zeros((1200, 2000, 3), np.uint8)  # 2.4 megapixels
    labels = np.zeros((1200, 2000), np.int32)
    labels[:, 1000:] = 1
    labels[:6, :100] = 2  # 0.025% of the image
    names = ["sky", "<b>grass</b>", "tiny"]
    areas = [(0, 0.5 - 0.00025), (1, 0.5), (2, 0.00025)]
    card = result_card(0, 1, "a.png", image, labels, names, areas)
    assert "&lt;b&gt;grass&lt;/b&gt;" in card and "<b>grass" not in card
    assert ">tiny<" not in card and f"+ 1 more classes, each under {100 * LEGEND_MIN_SHARE:g}%" in card
    prefix = 'class="sed-mask" src="data:image/png;base64,'
    start = card.index(prefix) + len(prefix)
    mask = Image.open(io.BytesIO(base64.b64decode(card[start : card.index('"', start)])))
    assert mask.size == (1322, 793)  # a megapixel at most
