#!/usr/bin/env python
"""Segment your own images with your own words in a browser (Gradio).

    pip install -e .[web]      # once (tools/setup_env.sh does it)
    python tools/web_demo.py --config-file configs/convnextB_768.yaml --opts MODEL.WEIGHTS sed_model_base.pth
    # then open http://127.0.0.1:7860

The page takes one or more images (or an example), a typed vocabulary ("cat, dog, grass/lawn") or a benchmark
vocabulary, and shows the overlay with its legend (as tools/demo.py draws it), the area of each class, and the
label maps and summary.json to download. The model is built once, from the same --config-file / --device /
--opts as tools/demo.py. It serves on 127.0.0.1 only unless --host says otherwise; --share asks Gradio for a
public link. Exit status 2: the model could not be built (the message says why).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from sed.web.launch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
