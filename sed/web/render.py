"""What the page shows of a segmentation: small previews and HTML, cheap at any image size.

The browser gets previews of at most a megapixel and 2048 pixels a side (so a panorama wider than the browsers' image
formats allow still shows, and a 3,000-px photo costs a resize instead of a full-size drawing): the input as
JPEG, the label map as a mask of exact class colours, stacked under an opacity slider. Class names are HTML
text placed on their regions and listed in an HTML legend, so they are read at the page's font size whatever
the image's size; classes under LEGEND_MIN_SHARE of the image are counted, not named. Full-resolution files
are written by `sed.web.app`.
"""

import base64
import html
import io

import cv2
import numpy as np
from PIL import Image

from ..utils.visualization import class_colors, display_name

__all__ = [
    "PREVIEW_SIDE",
    "PREVIEW_PIXELS",
    "LEGEND_MIN_SHARE",
    "preview_size",
    "downscale",
    "nearest_labels",
    "color_mask",
    "name_positions",
    "result_card",
    "failure_card",
    "thumbnails",
    "status_html",
]

# A preview sent to the browser has at most PREVIEW_PIXELS pixels (a photo: about its display size) and
# PREVIEW_SIDE pixels a side (a panorama: about the page's width).
PREVIEW_PIXELS = 1024 * 1024
PREVIEW_SIDE = 2048
LEGEND_MIN_SHARE = 0.005  # classes below 0.5% of the image are neither named on it nor listed one by one
WIDE = 2.5  # wider pictures (width / height) are shown one above the other, each at the page's full width
MAX_HEIGHT = "720px"  # a picture is never shown taller than this (a portrait fits a laptop window)
_PLACEMENT_SIDE = 256  # names are placed on a label map of at most this size (a few ms per class)


def preview_size(height, width, side=PREVIEW_SIDE, pixels=PREVIEW_PIXELS):
    """(h, w) of a picture of (height, width) shrunk to at most `side` pixels a side and `pixels` pixels (never
    enlarged, sides >= 1)."""
    scale = min(1.0, side / max(height, width), (pixels / (height * width)) ** 0.5)
    return max(1, round(height * scale)), max(1, round(width * scale))


def downscale(image, side=PREVIEW_SIDE, pixels=PREVIEW_PIXELS):
    """(h, w, 3) uint8 preview of a (H, W, 3) uint8 RGB image (area-averaged), sized by `preview_size`."""
    height, width = preview_size(*image.shape[:2], side, pixels)
    if (height, width) == image.shape[:2]:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def nearest_labels(label_map, size):
    """A (H, W) label map sampled at (h, w) = `size` by nearest neighbour (labels are never mixed)."""
    height, width = label_map.shape
    rows = ((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64)
    cols = ((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64)
    return label_map[rows[:, None], cols[None, :]]


def color_mask(label_map, num_classes):
    """PIL image of a (H, W) label map in the exact colours of `class_colors` (palette PNG up to 256 classes)."""
    colors = np.asarray(class_colors(num_classes), np.uint8).reshape(-1, 3)
    if num_classes <= 256:
        mask = Image.fromarray(label_map.astype(np.uint8), "P")
        mask.putpalette(colors.ravel().tolist())
        return mask
    return Image.fromarray(colors[label_map])


def name_positions(label_map, labels):
    """{label: (x, y) in [0, 1]} for each of `labels`: the point of its region farthest from the region's border
    (inside the region even when it is curved or split), on a (H, W) label map."""
    small = nearest_labels(label_map, preview_size(*label_map.shape, _PLACEMENT_SIDE, _PLACEMENT_SIDE**2))
    height, width = small.shape
    positions = {}
    for label in labels:
        inside = np.pad(small == label, 1).astype(np.uint8)  # the picture's edge counts as a border
        distance = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        positions[label] = ((x - 0.5) / width, (y - 0.5) / height)
    return positions


def _anchor(x):
    """Horizontal shift (percent of a name's width) of a name at `x` in [0, 1]: centred on its point, but
    starting or ending there near the picture's sides so that it stays inside."""
    return 0 if x < 0.15 else -100 if x > 0.85 else -50


def _data_uri(picture, format):
    buffer = io.BytesIO()
    if format == "JPEG":
        picture.save(buffer, format, quality=85)
    else:
        picture.save(buffer, format, compress_level=1)
    return f"data:image/{format.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def _rgb(color):
    return f"rgb({color[0]}, {color[1]}, {color[2]})"


def result_card(index, total, name, image, label_map, class_names, areas, opacity=70):
    """The HTML of one segmented image: caption, input and segmentation side by side at display size, legend.

    Args:
        index, total: the image's place in the batch (from 0) and the batch size.
        name: the file name shown.
        image: (H, W, 3) uint8 RGB input; label_map: (H, W) labels into `class_names`.
        areas: [(label, share)] of the present classes, largest first (`class_areas`).
        opacity: the mask's initial opacity in percent (the slider changes it in the browser).
    """
    preview = downscale(image)
    labels = nearest_labels(label_map, preview.shape[:2])
    colors = class_colors(len(class_names))
    named = [(label, share) for label, share in areas if share >= LEGEND_MIN_SHARE]
    positions = name_positions(labels, [label for label, _ in named])
    names = "".join(
        f'<span class="sed-name" style="left: {100 * x:.2f}%; top: {100 * y:.2f}%; transform: '
        f'translate({_anchor(x)}%, -50%)">{html.escape(display_name(class_names[label]))}</span>'
        for label, (x, y) in positions.items()
    )
    legend = "".join(
        f'<li><span class="sed-swatch" style="background: {_rgb(colors[label])}"></span>'
        f"{html.escape(display_name(class_names[label]))} <small>{100 * share:.1f}%</small></li>"
        for label, share in named
    )
    if len(named) < len(areas):
        legend += (
            f'<li class="sed-more">+ {len(areas) - len(named)} more classes, each under '
            f"{100 * LEGEND_MIN_SHARE:g}% of the image</li>"
        )
    height, width = image.shape[:2]
    shrunk = f", shown at {preview.shape[1]} × {preview.shape[0]}" if preview.shape != image.shape else ""
    input_uri = _data_uri(Image.fromarray(preview), "JPEG")
    mask_uri = _data_uri(color_mask(labels, len(class_names)), "PNG")
    title = html.escape(name)
    # Both pictures fill their half of the page's width, unless that makes them taller than most of the window.
    frame = f"width: min(100%, calc({MAX_HEIGHT} * {width / height:.5f}))"
    return (
        f'<section class="sed-card" data-name="{title}">'
        f'<h3 class="sed-caption">{index + 1} of {total}: {title} <small>({width} × {height} px{shrunk})</small></h3>'
        f'<div class="sed-pair{" sed-wide" if width > WIDE * height else ""}">'
        f'<figure><div class="sed-frame" style="{frame}">'
        f'<img class="sed-input" src="{input_uri}" alt="input {title}"></div>'
        f"<figcaption>input</figcaption></figure>"
        f'<figure><div class="sed-frame sed-stack" style="{frame}; --sed-opacity: {opacity / 100:g}">'
        f'<img src="{input_uri}" alt=""><img class="sed-mask" src="{mask_uri}" alt="segmentation of {title}">'
        f"{names}</div>"
        f'<figcaption>segmentation, mask opacity <input type="range" class="sed-opacity" min="0" max="100" '
        f'value="{opacity}"> (at 100% the colours are exactly the legend\'s)</figcaption>'
        f'<ul class="sed-legend">{legend}</ul></figure></div></section>'
    )


def failure_card(index, total, name, reason):
    """The HTML of an image that could not be segmented (the others of its batch are)."""
    return (
        f'<section class="sed-card sed-failed"><h3 class="sed-caption">{index + 1} of {total}: '
        f"{html.escape(name)}</h3><p>Not segmented: {html.escape(reason)}</p></section>"
    )


def thumbnails(entries):
    """HTML previews of uploaded files: `entries` = [(name, (h, w, 3) uint8 thumbnail or a reason it has none)]."""
    items = []
    for name, thumbnail in entries:
        if isinstance(thumbnail, str):
            picture = f'<span class="sed-no-preview">{html.escape(thumbnail)}</span>'
        else:
            picture = f'<img src="{_data_uri(Image.fromarray(thumbnail), "JPEG")}" alt="{html.escape(name)}">'
        items.append(f"<figure>{picture}<figcaption>{html.escape(name)}</figcaption></figure>")
    return f'<div class="sed-thumbnails">{"".join(items)}</div>' if items else ""


def status_html(message, kind="ok"):
    """The page's status line: kind "ok", "warning" (some images skipped), "error" (nothing done) or
    "running"; styled by kind."""
    prefix = "<strong>Error:</strong> " if kind == "error" else ""
    return f'<div class="sed-status sed-{kind}" role="status">{prefix}{html.escape(message)}</div>'


CSS = """
.sed-status { padding: 0.6em 0.9em; border-radius: 6px; border: 1px solid #b7dfc0; background: #eef8f0; }
.sed-status.sed-error { border-color: #e9a5a5; background: #fdeeee; color: #8a1414; }
.sed-status.sed-warning { border-color: #e6cf8a; background: #fdf7e3; color: #6b4f00; }
.sed-status.sed-running { border-color: #c9d3e6; background: #f1f4fa; }
.sed-card { margin: 0.8em 0 1.6em; }
.sed-card.sed-failed p { color: #8a1414; }
.sed-caption { margin: 0 0 0.4em; font-size: 1.05em; }
.sed-pair { display: flex; gap: 12px; align-items: flex-start; }
.sed-pair.sed-wide { flex-direction: column; align-items: stretch; }
.sed-pair.sed-wide figure { flex: none; width: 100%; }
.sed-pair figure { flex: 1 1 0; min-width: 0; margin: 0; }
.sed-frame { position: relative; margin: 0 auto; }
.sed-frame img { display: block; width: 100%; height: auto; }
.sed-stack { display: grid; }
.sed-stack > img { grid-area: 1 / 1; }
.sed-stack > .sed-mask { opacity: var(--sed-opacity); image-rendering: pixelated; }
.sed-name { position: absolute; padding: 0 4px; border-radius: 3px;
  background: rgba(0, 0, 0, 0.6); color: #fff; font-size: 13px; white-space: nowrap; pointer-events: none; }
.sed-pair figcaption { text-align: center; font-size: 0.85em; color: #555; }
.sed-opacity { vertical-align: middle; width: 8em; }
.sed-legend { list-style: none; padding: 0; margin: 0.5em 0 0; display: flex; flex-wrap: wrap; gap: 4px 18px;
  justify-content: center; }
.sed-legend li { display: flex; align-items: center; gap: 6px; margin: 0 !important; }
.sed-swatch { display: inline-block; width: 1.1em; height: 1.1em; border: 1px solid #555; }
.sed-more { color: #555; }
.sed-thumbnails { display: flex; flex-wrap: wrap; gap: 8px; }
.sed-thumbnails figure { margin: 0; text-align: center; font-size: 0.8em; }
.sed-thumbnails img { display: block; max-height: 96px; max-width: 160px; }
.sed-no-preview { display: block; padding: 1em; color: #8a1414; max-width: 160px; }
"""

# Moves a card's mask opacity with its slider (event delegation: cards are replaced on every request).
OPACITY_JS = """
element.addEventListener('input', (event) => {
  if (!event.target.classList.contains('sed-opacity')) return;
  const stack = event.target.closest('.sed-card').querySelector('.sed-stack');
  stack.style.setProperty('--sed-opacity', event.target.value / 100);
});
"""
