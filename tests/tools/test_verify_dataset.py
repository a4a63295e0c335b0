"""tools/verify_dataset.py: a custom dataset from its spec, verified with worker processes; the verdict is the
last line and the exit code says whether something is wrong."""

import numpy as np
from conftest import load_tool
from PIL import Image


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_command_line_verdict_and_exit_code(tmp_path, monkeypatch, capsys):
    main = load_tool("verify_dataset").main
    root = tmp_path / "mine"
    for i in range(3):
        write(root / "img" / f"{i}.jpg", np.full((3, 3, 3), 50 * i, np.uint8))
        write(root / "lbl" / f"{i}.png", np.full((3, 3), i, np.uint8))
    spec = tmp_path / "mine.yaml"
    spec.write_text(
        f"name: verify_mine\nroot: {root}\nclasses: [a, b, c]\nsplits: {{val: {{images: img, masks: lbl}}}}\n"
    )
    assert main(["--spec", str(spec), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "verify_mine_val: OK, 3 images, 3 classes"
    write(root / "lbl" / "2.png", np.full((3, 3), 7, np.uint8))
    write(
        root / "img" / "3.jpg", np.zeros((3, 3, 3), np.uint8)
    )  # an image without a label map, in the dataset's own folder
    assert main(["--spec", str(spec), "--workers", "0"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: 1 images without a label map: 3" in out
    assert "2.png: label value(s) 7 are neither a class id (0..2: 3 classes) nor the ignore label 255" in out
    assert main(["no_such_dataset"]) == 2
