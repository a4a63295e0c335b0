#!/usr/bin/env python
"""Segment your own images with your own words in a browser (Gradio).

    pip install -e .[web]      # once (tools/setup_env.sh does it)
    python tools/web_demo.py --config-file configs/convnextB_768.yaml --opts MODEL.WEIGHTS sed_model_base.pth
    # then open http://127.0.0.1:7860

The page takes one or more images (or an example, run in one click), and either typed classes ("cat, dog,
grass/lawn") or a benchmark vocabulary (the choice is explicit; the status line says which was used). Each image
is shown whole beside its segmentation (a mask in the legend's colours under an opacity slider, class names as
page text), with the area of each class; downloads: one zip of everything, per image a coloured mask and the raw
label map, and summary.json, all at full resolution. The model is built once, from the same --config-file /
--device / --opts as tools/demo.py. It serves on 127.0.0.1 only unless --host says otherwise; --share asks Gradio
for a public link. Exit status 2: the model could not be built (the message says why).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from sed.web.launch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
