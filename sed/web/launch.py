"""Command line of tools/web_demo.py: build the model once, then serve the page (`sed.web.app`)."""

import argparse
import logging
import os
import sys

from ..predictor import OpenVocabSegmenter, build_error_message

__all__ = ["get_parser", "main"]


def get_parser():
    parser = argparse.ArgumentParser(description="Segment your own images with your own words in a browser.")
    parser.add_argument("--config-file", required=True, metavar="FILE", help="model config (yaml)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: MODEL.DEVICE if available, else cpu)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a public link (off by default)")
    parser.add_argument(
        "--opts",
        default=[],
        nargs=argparse.REMAINDER,
        metavar="KEY VALUE",
        help="config overrides, e.g. MODEL.WEIGHTS model.pth (must come last)",
    )
    return parser


def main(argv=None):
    """Serves until interrupted; returns 2 when the model cannot be built (one line on stderr says why)."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        import gradio  # noqa: F401  checked before the model is built: it takes a while
    except ImportError:
        print("error: the browser demo needs Gradio: pip install -e .[web]", file=sys.stderr)
        return 2
    from .app import WebDemo, build_app
    from .render import CSS

    try:
        segmenter = OpenVocabSegmenter(args.config_file, opts=args.opts, device=args.device)
    except (ValueError, OSError, RuntimeError) as e:  # checkpoint, config, opts, device, CLIP weights
        print(f"error: {build_error_message(e, args.config_file)}", file=sys.stderr)
        return 2
    demo = WebDemo(segmenter)
    app = build_app(demo)
    try:
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            show_error=True,
            css=CSS,
            allowed_paths=sorted({os.path.dirname(path) for path, _ in demo.examples()}),
        )
    finally:
        demo.close()
    return 0
