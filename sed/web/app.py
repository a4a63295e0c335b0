"""A Gradio page over `OpenVocabSegmenter`: upload images, choose a vocabulary, see and download the segmentation.

The model is built once per process (by the caller, from the command line of tools/web_demo.py); the text
embeddings of a vocabulary are cached by the model, so a second request with the same words skips the text
encoder. The page shows previews (`sed.web.render`: cheap at any image size, class names as page text); the
downloads are full resolution: raw label maps (the CLI's format), coloured masks, summary.json and one zip of
them all. Bad input gets a one-line message in a visitor's words in the page's status line; an image that
cannot be read or segmented costs only itself (the others of its batch are segmented, the status names it).
"""

import json
import logging
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from ..data.image_io import read_error_reason
from ..data.synthetic import SPLITS, SYNTHETIC_CLASSES, render_sample
from ..data.vocabulary import VocabularyError, benchmark_vocabularies, parse_vocabulary
from ..modeling.postprocess import NonFiniteOutputError
from ..predictor import OpenVocabSegmenter, load_image, segmentation_summary, summary_classes
from ..utils.class_names import REPO_ROOT, load_class_names
from ..utils.files import write_label_map
from ..utils.visualization import class_areas, class_colors, display_name
from . import render

__all__ = ["WebDemo", "Response", "RequestError", "build_app", "benchmark_choices"]

logger = logging.getLogger(__name__)

AREA_COLUMNS = ["image", "class", "area %"]
# The page's fast-inference choices and `OpenVocabSegmenter.fast_inference`; auto: on above 50 classes.
FAST_CHOICES = {"auto": None, "on": True, "off": False}
TYPED, BENCHMARK = "typed classes", "benchmark vocabulary"
# Readable names of the benchmark vocabularies (datasets/*.json); the page adds their class counts.
BENCHMARK_TITLES = {
    "ade150": "ADE20K",
    "ade847": "ADE20K full",
    "coco": "COCO-Stuff",
    "pc459": "PASCAL Context full",
    "pc59": "PASCAL Context",
    "voc20": "PASCAL VOC",
    "voc20b": "PASCAL VOC with background",
    "synthetic": "Quickstart textures",
}
TRAINING_SETS = {
    "coco_2017_train_stuff_all_sem_seg": "COCO-Stuff's 171 classes",
    "synthetic_train_sem_seg": "the quickstart's synthetic textures",
}
THUMBNAIL_SIDE = 160
# The example for models trained on photos: a drawing shipped with the repository (no photo can be shipped).
DRAWING_EXAMPLE = (os.path.join(REPO_ROOT, "docs", "images", "demo_input.jpg"), "sky, grass/lawn, house, tree, sun")
# The quickstart's examples: synthetic mosaics of its 8 classes, (height, width) landscape, portrait, square.
SYNTHETIC_EXAMPLE_SIZES = [(240, 360), (360, 240), (256, 256)]


class RequestError(ValueError):
    """Nothing of a request can be segmented; the message (one line, a visitor's words) is shown in the page."""


@dataclass
class Response:
    """What the page shows for a request.

    Attributes:
        cards: HTML of one card per image, in upload order (`render.result_card` / `render.failure_card`).
        rows: [image, class, area %] of every class found, image by image, largest first.
        downloads: paths of the zip of everything, then per image its coloured mask and raw label map, then
            summary.json.
        status: the one-line status (which vocabulary, how many images, what was skipped and why).
        failures: [{"input": name, "error": reason}] of the images not segmented.
    """

    cards: str
    rows: List[list]
    downloads: List[str]
    status: str
    failures: List[dict] = field(default_factory=list)


def benchmark_choices():
    """[(label, name)] of the benchmark vocabularies, e.g. ("ADE20K, 150 classes", "ade150")."""
    choices = []
    for name in benchmark_vocabularies():
        count = len(load_class_names(os.path.join(REPO_ROOT, "datasets", f"{name}.json")))
        choices.append((f"{BENCHMARK_TITLES.get(name, name)}, {count} classes", name))
    return choices


def _visitor_reason(error):
    """Why an uploaded file is not an image, without the CLI's advice on dataset files."""
    return read_error_reason(error).split("; ")[0]


def _thumbnail(path):
    """A (h, w, 3) preview of at most THUMBNAIL_SIDE pixels a side of an image file, or why there is none (read as
    the segmentation reads it, so that it says the same)."""
    try:
        return render.downscale(load_image(path), THUMBNAIL_SIDE, THUMBNAIL_SIDE**2)
    except (OSError, ValueError) as e:
        return _visitor_reason(e)


class WebDemo:
    """The requests of the page, independent of Gradio (so they are testable without a browser).

    Attributes:
        segmenter: the model, built once.
        output_root: a temporary directory holding one sub-directory of files per request, and the examples.
    """

    def __init__(self, segmenter: OpenVocabSegmenter):
        self.segmenter = segmenter
        self._output_root = tempfile.TemporaryDirectory(prefix="sed_web_demo_")
        self.output_root = self._output_root.name
        self._requests = 0

    @property
    def trained_on_synthetic(self):
        """Whether the model's training set is the quickstart's synthetic textures (it then knows only those)."""
        return any(name in SPLITS for name in self.segmenter.cfg.DATASETS.TRAIN)

    def describe_model(self):
        """Markdown: what the model is, what it was trained on, what it can segment."""
        segmenter, cfg = self.segmenter, self.segmenter.cfg
        weights = os.path.basename(cfg.MODEL.WEIGHTS)
        text = f"**Model:** {type(segmenter.model).__name__}"
        text += f" (`{weights}`, on {segmenter.device})." if weights else f" on {segmenter.device}."
        if not weights:
            text += (
                " **It has random weights** (no MODEL.WEIGHTS): its segmentations are noise; this page "
                "shows how the demo works, not what the model can do."
            )
        elif self.trained_on_synthetic:
            text += (
                f" Trained on the quickstart's synthetic textures, it knows only their "
                f"{len(SYNTHETIC_CLASSES)} classes ({', '.join(SYNTHETIC_CLASSES)}): real photos come out "
                "as nonsense. Try the examples."
            )
        else:
            trained = ", ".join(TRAINING_SETS.get(name, name) for name in cfg.DATASETS.TRAIN)
            text += f" Trained on {trained}."
        if segmenter.open_vocabulary:
            text += (
                " It is open-vocabulary: type any class names, and it labels each pixel with the one that "
                "fits best (every pixel gets one of them)."
            )
        else:
            text += (
                f" It is closed-vocabulary: it segments the {len(segmenter.class_names)} classes of "
                f"{cfg.DATASETS.TEST[0]}."
            )
        return text

    def examples(self):
        """[(image path, typed vocabulary)] offered on the page: for a model of the quickstart's synthetic data
        (trained or not) mosaics of its textures (generated by sed/data/synthetic.py), else a drawing."""
        if not self.trained_on_synthetic:
            return [DRAWING_EXAMPLE] if os.path.isfile(DRAWING_EXAMPLE[0]) else []
        folder = os.path.join(self.output_root, "examples")
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(0)
        examples = []
        for index, (height, width) in enumerate(SYNTHETIC_EXAMPLE_SIZES):
            path = os.path.join(folder, f"textures_{index + 1}_{width}x{height}.png")
            if not os.path.isfile(path):
                Image.fromarray(render_sample(rng, height, width)[0]).save(path)
            examples.append((path, ", ".join(SYNTHETIC_CLASSES)))
        return examples

    def class_names(self, words: str = "", benchmark: Optional[str] = None) -> Tuple[List[str], str]:
        """The T class names of a request and how the status line names them.

        Args:
            words: typed classes, separated by commas, synonyms by "/"; or
            benchmark: a benchmark vocabulary's name ("ade150"). Never both: the page sends the one chosen.
        Raises:
            RequestError: an empty, single-class or malformed vocabulary, an unknown benchmark, both, or a
                vocabulary given to a closed-vocabulary model.
        """
        segmenter = self.segmenter
        if not segmenter.open_vocabulary:
            if (words or "").strip() or benchmark:
                raise RequestError(
                    f"This model segments only its own {len(segmenter.class_names)} classes: "
                    "leave the vocabulary empty."
                )
            return list(segmenter.class_names), f"the model's {len(segmenter.class_names)} classes"
        if benchmark and (words or "").strip():
            raise RequestError("Give typed classes or a benchmark vocabulary, not both.")
        if benchmark:
            if benchmark not in benchmark_vocabularies():
                raise RequestError(f"There is no benchmark vocabulary {benchmark!r}: pick one from the list.")
            names = segmenter.resolve_vocabulary(benchmark)
            return names, f"the {BENCHMARK_TITLES.get(benchmark, benchmark)} vocabulary ({len(names)} classes)"
        text = (words or "").strip()
        if not text:
            raise RequestError(
                'The vocabulary is empty: type class names separated by commas ("cat, dog, '
                'grass/lawn"), or choose a benchmark vocabulary.'
            )
        if not any(separator in text for separator in ",;|"):
            raise RequestError(
                f'Type at least two classes, separated by commas: with "{text}" alone every pixel would get that class.'
            )
        try:
            names = parse_vocabulary(text)
        except VocabularyError as e:
            raise RequestError(str(e)) from e
        shown = ", ".join(display_name(name) for name in names[:6]) + (", ..." if len(names) > 6 else "")
        return names, f"your {len(names)} classes ({shown})"

    def previews(self, paths: Sequence[str]) -> str:
        """HTML thumbnails of uploaded files (a file that is no image gets the reason instead)."""
        return render.thumbnails([(os.path.basename(path), _thumbnail(path)) for path in paths or []])

    def segment(
        self,
        paths: Sequence[str],
        words: str = "",
        benchmark: Optional[str] = None,
        fast: Optional[bool] = None,
        progress=None,
    ) -> Response:
        """Segments the images at `paths` over the typed `words` or a `benchmark` vocabulary.

        Args:
            fast: category early rejection on (True), off (False) or as the CLI's default (None: on above 50
                classes).
            progress: called as progress(done, total, name) before each image (the page's progress bar).
        Raises:
            RequestError: no image, a bad vocabulary, or no image could be segmented; the message says which.
        """
        if not paths:
            raise RequestError("No image: upload one or more images, or click an example.")
        class_names, vocabulary = self.class_names(words, benchmark)
        self.segmenter.fast_inference = fast
        start = time.perf_counter()
        self._requests += 1
        output_dir = os.path.join(self.output_root, f"request_{self._requests:05d}")
        os.makedirs(output_dir)
        cards, rows, files, entries, failures = [], [], [], [], []
        for index, path in enumerate(paths):
            name = os.path.basename(path)
            if progress is not None:
                progress(index, len(paths), name)
            try:
                image = load_image(path)
            except (OSError, ValueError) as e:
                failures.append({"input": name, "error": _visitor_reason(e)})
                cards.append(render.failure_card(index, len(paths), name, failures[-1]["error"]))
                continue
            try:
                label_map = self.segmenter.segment(image, class_names).label_map
            except NonFiniteOutputError as e:  # the weights are broken, not this image: every image would be
                raise RequestError(str(NonFiniteOutputError(name))) from e
            except (ValueError, RuntimeError) as e:  # e.g. out of memory
                failures.append({"input": name, "error": f"the model cannot take it ({str(e).splitlines()[0]})"})
                cards.append(render.failure_card(index, len(paths), name, failures[-1]["error"]))
                continue
            areas = class_areas(label_map, len(class_names))
            cards.append(render.result_card(index, len(paths), name, image, label_map, class_names, areas))
            rows.extend([name, class_names[label], round(100 * share, 2)] for label, share in areas)
            stem = f"{index:02d}_{os.path.splitext(name)[0]}"
            colored = os.path.join(output_dir, f"{stem}_colored.png")
            render.color_mask(label_map, len(class_names)).save(colored, compress_level=1)
            labels = os.path.join(output_dir, f"{stem}_labels.png")
            write_label_map(labels, label_map, len(class_names))
            files += [colored, labels]
            entries.append(
                {
                    "input": name,
                    "size": [int(label_map.shape[0]), int(label_map.shape[1])],
                    "colored": os.path.basename(colored),
                    "labels": os.path.basename(labels),
                    "classes": summary_classes(label_map, class_names),
                }
            )
        if not entries:
            raise RequestError("Nothing segmented: " + "; ".join(f"{f['input']}: {f['error']}" for f in failures) + ".")
        uses_fast = self.segmenter.uses_fast_inference(len(class_names))
        summary = os.path.join(output_dir, "summary.json")
        with open(summary, "w") as f:
            json.dump(
                segmentation_summary(
                    class_names, uses_fast, entries, failures, colors=[list(c) for c in class_colors(len(class_names))]
                ),
                f,
                indent=1,
            )
        archive = os.path.join(output_dir, f"segmentation_{len(entries)}_images.zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for path in files + [summary]:
                zf.write(path, os.path.basename(path))
            zf.writestr("classes.json", json.dumps(class_names, indent=1))
        images = f"{len(entries)} image{'s' * (len(entries) != 1)}"
        status = (
            f"Segmented {images} over {vocabulary}; fast inference {'on' if uses_fast else 'off'}; "
            f"{time.perf_counter() - start:.1f} s"
        )
        status += "".join(f"; skipped {f['input']}: {f['error']}" for f in failures) + "."
        return Response("".join(cards), rows, [archive] + files + [summary], status, failures)

    def close(self):
        self._output_root.cleanup()


def build_app(demo: WebDemo):
    """The Gradio Blocks page of `demo`; launch it with css=`sed.web.render.CSS` and the folders of
    `demo.examples()` as allowed paths (results go through Gradio's own cache)."""
    import gradio as gr

    segmenter = demo.segmenter
    open_vocabulary = segmenter.open_vocabulary
    choices = benchmark_choices()
    # The benchmark offered first: the model's own vocabulary when it is one, else ADE20K-150.
    names = [name for _, name in choices]
    default_benchmark = next(
        (name for name in names if parse_vocabulary(name) == segmenter.class_names),
        "ade150" if "ade150" in names else names[0],
    )
    examples = demo.examples()

    def paths_of(files):
        return [getattr(f, "name", f) for f in (files or [])]

    def start(files):
        count = len(files or [])
        text = f"Segmenting {count} image{'s' * (count != 1)}..." if count else "Checking the request..."
        return gr.Button(interactive=False, value="Segmenting..."), render.status_html(text, "running")

    def run(files, source, words, benchmark, fast, progress=gr.Progress()):
        def report(done, total, name):
            progress((done, total), desc=f"image {done + 1} of {total}: {name}", unit="images")

        try:
            response = demo.segment(
                paths_of(files),
                words if source == TYPED else "",
                benchmark if source == BENCHMARK else None,
                FAST_CHOICES[fast],
                report,
            )
        except RequestError as e:
            return "", [], None, render.status_html(str(e), "error")
        kind = "warning" if response.failures else "ok"
        return response.cards, response.rows, response.downloads, render.status_html(response.status, kind)

    def finish():
        return gr.Button(interactive=True, value="Segment")

    def choose_source(source):
        return gr.Textbox(visible=source == TYPED), gr.Dropdown(visible=source == BENCHMARK)

    def pick_example(index):
        path, example_words = examples[index]
        if not open_vocabulary:  # a closed-vocabulary model segments its own classes: no words
            return [path], TYPED, gr.Textbox(), gr.Dropdown()
        return [path], TYPED, gr.Textbox(value=example_words, visible=True), gr.Dropdown(visible=False)

    fast_info = (
        "Category early rejection: a first pass keeps only the classes likely in the image, and the "
        "decoder then works on those. Much faster for large vocabularies, may miss small classes. "
        "auto: on above 50 classes."
    )
    with gr.Blocks(title="SED: open-vocabulary semantic segmentation", analytics_enabled=False) as app:
        gr.Markdown("## Segment your images with your own words\n" + demo.describe_model())
        with gr.Row(equal_height=False):
            with gr.Column():
                files = gr.File(
                    label="Images (one or several)", file_count="multiple", file_types=["image"], elem_id="images"
                )
                previews = gr.HTML(elem_id="input-previews")
                if examples:
                    example_table = gr.Dataset(
                        label="Examples: click one to segment it",
                        components=["image", "textbox"],
                        headers=["image", "vocabulary"],
                        samples=[list(example) for example in examples],
                        type="index",
                        elem_id="examples",
                    )
            with gr.Column():
                if open_vocabulary:
                    source = gr.Radio(
                        label="Vocabulary",
                        choices=[TYPED, BENCHMARK],
                        value=TYPED,
                        elem_id="vocabulary-source",
                        info="The one chosen is used; the other is ignored.",
                    )
                else:
                    source = gr.State(TYPED)
                    gr.Markdown(
                        f"**Vocabulary:** the model's own {len(segmenter.class_names)} classes "
                        f"({', '.join(display_name(n) for n in segmenter.class_names[:12])}"
                        f"{', ...' if len(segmenter.class_names) > 12 else ''})."
                    )
                words = gr.Textbox(
                    label="Classes, separated by commas; synonyms of one class by /",
                    placeholder="cat, dog, grass/lawn, sky",
                    elem_id="vocabulary",
                    visible=open_vocabulary,
                )
                benchmark = gr.Dropdown(
                    label="Benchmark vocabulary",
                    choices=choices,
                    value=default_benchmark,
                    visible=False,
                    elem_id="benchmark",
                )
                fast = gr.Radio(
                    label="Fast inference",
                    choices=list(FAST_CHOICES),
                    value="auto",
                    info=fast_info,
                    interactive=open_vocabulary,
                    visible=open_vocabulary,
                    elem_id="fast",
                )
                button = gr.Button("Segment", variant="primary", elem_id="run")
                status = gr.HTML(elem_id="status")  # next to the button: seen without scrolling
        results = gr.HTML(elem_id="result", js_on_load=render.OPACITY_JS)
        with gr.Row():
            areas = gr.Dataframe(headers=AREA_COLUMNS, label="Class areas", elem_id="areas")
            downloads = gr.File(
                label="Downloads: all in one zip; per image the coloured mask and the raw label "
                "map (pixel value = class index); summary.json",
                file_count="multiple",
                elem_id="downloads",
            )

        inputs = [files, source, words, benchmark, fast]
        outputs = [results, areas, downloads, status]
        files.change(lambda f: demo.previews(paths_of(f)), inputs=files, outputs=previews, show_progress="hidden")
        if open_vocabulary:
            source.change(choose_source, inputs=source, outputs=[words, benchmark], show_progress="hidden")
        button.click(start, inputs=files, outputs=[button, status], queue=False, show_progress="hidden").then(
            run, inputs=inputs, outputs=outputs, show_progress_on=status
        ).then(finish, outputs=button, queue=False)
        if examples:
            example_table.click(
                pick_example, inputs=example_table, outputs=[files, source, words, benchmark], show_progress="hidden"
            ).then(start, inputs=files, outputs=[button, status], queue=False, show_progress="hidden").then(
                run, inputs=inputs, outputs=outputs, show_progress_on=status
            ).then(finish, outputs=button, queue=False)
    return app
