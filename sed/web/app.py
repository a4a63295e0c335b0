"""A Gradio page over `OpenVocabSegmenter`: upload images, type a vocabulary, see and download the segmentation.

The model is built once per process (by the caller, from the command line of tools/web_demo.py); the text
embeddings of a vocabulary are cached by the model, so a second request with the same words skips the text
encoder. Pictures come from the renderer of tools/demo.py (`sed.utils.visualization.draw_segmentation`), the
label maps and summary.json have the CLI's formats, and bad input gets the CLI's one-line messages, shown in
the page's status line instead of a traceback.
"""
import json
import logging
import os
import tempfile
from typing import List, Optional, Sequence


from ..data.image_io import read_error_reason
from ..data.vocabulary import VocabularyError, benchmark_vocabularies
from ..predictor import OpenVocabSegmenter, load_image, segmentation_summary, summary_classes
from ..utils.files import write_label_map
from ..utils.visualization import class_areas, display_name, draw_segmentation

__all__ = ["WebDemo", "build_app"]

logger = logging.getLogger(__name__)

AREA_COLUMNS = ["image", "class", "area %"]
# The page's fast-inference choices and `OpenVocabSegmenter.fast_inference`; auto: on above 50 classes.
FAST_CHOICES = {"auto": None, "on": True, "off": False}


class RequestError(ValueError):
    """Nothing of a request can be segmented; the message (one line) is shown in the page."""


class WebDemo:
    """The requests of the page, independent of Gradio (so they are testable without a browser).

    Attributes:
        segmenter: the model, built once.
        output_root: a temporary directory holding one sub-directory of files per request.
    """

    def __init__(self, segmenter: OpenVocabSegmenter):
        self.segmenter = segmenter
        self._output_root = tempfile.TemporaryDirectory(prefix="sed_web_demo_")
        self.output_root = self._output_root.name
        self._requests = 0

    def class_names(self, vocabulary: str, benchmark: Optional[str]) -> List[str]:
        """The T class names of a request: the benchmark's if one is chosen, else the typed words.

        Closed-vocabulary models take no words: an empty field means their own classes; words raise the
        CLI's message. Raises VocabularyError (e.g. for an empty vocabulary of an open-vocabulary model).
        """
        if benchmark:
            return self.segmenter.resolve_vocabulary(benchmark)
        if not self.segmenter.open_vocabulary and not vocabulary.strip():
            return self.segmenter.resolve_vocabulary(None)
        return self.segmenter.resolve_vocabulary(vocabulary)

    def segment(self, paths: Sequence[str], vocabulary: str = "", benchmark: Optional[str] = None,
                fast: Optional[bool] = None):
        """Segments the images at `paths` over a vocabulary.

        Returns:
            (gallery: [((H, W + legend, 3) uint8 RGB overlay, caption)], area rows [[image, class, area %]],
            downloads: [label map PNGs..., summary.json], status line). `fast`: category early rejection on
            (True), off (False) or as the CLI's default (None: on above 50 classes).
        Raises:
            RequestError: no image, a bad vocabulary, or no readable image; the message says which.
        """
        if not paths:
            raise RequestError("No image: upload one or more images, or pick an example.")
        try:
            class_names = self.class_names(vocabulary or "", benchmark)
        except VocabularyError as e:
            raise RequestError(str(e)) from e
        self.segmenter.fast_inference = fast
        self._requests += 1
        output_dir = os.path.join(self.output_root, f"request_{self._requests:05d}")
        os.makedirs(output_dir)
        gallery, rows, downloads, entries, failures = [], [], [], [], []
        for index, path in enumerate(paths):
            name = os.path.basename(path)
            try:
                image = load_image(path)
            except (OSError, ValueError) as e:
                failures.append({"input": name, "error": read_error_reason(e)})
                continue
            result = self.segmenter.segment(image, class_names)
            areas = class_areas(result.label_map, len(class_names))
            gallery.append((draw_segmentation(image, result.label_map, class_names),
                            ", ".join(display_name(class_names[label]) for label, _ in areas)))
            rows.extend([name, class_names[label], round(100 * share, 2)] for label, share in areas)
            labels = os.path.join(output_dir, f"{index:02d}_{os.path.splitext(name)[0]}_labels.png")
            write_label_map(labels, result.label_map, len(class_names))
            downloads.append(labels)
            entries.append({"input": name, "labels": os.path.basename(labels),
                            "classes": summary_classes(result.label_map, class_names)})
        if not entries:
            raise RequestError("Nothing segmented: " + "; ".join(f"{f['input']}: {f['error']}" for f in failures))
        summary = os.path.join(output_dir, "summary.json")
        with open(summary, "w") as f:
            json.dump(segmentation_summary(class_names, self.segmenter.uses_fast_inference(len(class_names)),
                                           entries, failures), f, indent=1)
        downloads.append(summary)
        status = f"{len(entries)} segmented over {len(class_names)} classes"
        status += "".join(f"; skipped {f['input']}: {f['error']}" for f in failures) + "."
        return gallery, rows, downloads, status

    def close(self):
        self._output_root.cleanup()


def build_app(demo: WebDemo, examples: Sequence[str] = ()):
    """The Gradio Blocks page of `demo`; `examples`: image paths offered as one-click inputs."""
    import gradio as gr

    segmenter = demo.segmenter
    if segmenter.open_vocabulary:
        hint = 'Classes separated by commas, synonyms by "/": cat, dog, grass/lawn'
    else:
        hint = (f"This closed-vocabulary model segments the {len(segmenter.class_names)} classes of "
                f"{segmenter.cfg.DATASETS.TEST[0]}: leave this empty.")

    def run(files, vocabulary, benchmark, fast):
        paths = [getattr(f, "name", f) for f in (files or [])]
        try:
            gallery, rows, downloads, status = demo.segment(paths, vocabulary, benchmark or None, FAST_CHOICES[fast])
        except RequestError as e:
            return [], [], None, f"**Error:** {e}"
        return gallery, rows, downloads, status

    with gr.Blocks(title="SED: open-vocabulary semantic segmentation", analytics_enabled=False) as app:
        gr.Markdown("## Segment your images with your own words\n"
                    f"Model: `{os.path.basename(segmenter.cfg.MODEL.WEIGHTS) or 'random weights'}` "
                    f"({type(segmenter.model).__name__}, device {segmenter.device}).")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Images", file_count="multiple", file_types=["image"], elem_id="images")
                vocabulary = gr.Textbox(label="Vocabulary", placeholder=hint, elem_id="vocabulary")
                benchmark = gr.Dropdown(label="or a benchmark vocabulary", choices=[""] + benchmark_vocabularies(),
                                        value="", interactive=segmenter.open_vocabulary, elem_id="benchmark")
                fast = gr.Radio(label="Fast inference (category early rejection)", choices=list(FAST_CHOICES),
                                value="auto", interactive=segmenter.open_vocabulary, elem_id="fast")
                button = gr.Button("Segment", variant="primary", elem_id="run")
                if examples:
                    gr.Examples(examples=[[[path]] for path in examples], inputs=[files], label="Examples")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                gallery = gr.Gallery(label="Segmentation", elem_id="result", columns=1, height=480, object_fit="contain")
                areas = gr.Dataframe(headers=AREA_COLUMNS, label="Class areas", elem_id="areas")
                downloads = gr.File(label="Label maps and summary.json", file_count="multiple", elem_id="downloads")
        button.click(run, inputs=[files, vocabulary, benchmark, fast], outputs=[gallery, areas, downloads, status])
    return app
