"""The installed package, as tools/setup_env.sh installs it."""

import os
import subprocess
import sys

from conftest import REPO


def test_script_beside_a_checkout_folder_named_sed_imports_the_package(tmp_path):
    # A checkout cloned as ./sed next to the user's script: its top folder has no __init__.py, and a finder-based
    # editable install loses to it (`import sed` gave an empty namespace package). setup_env.sh installs in
    # setuptools' "compat" editable mode, a path entry that Python's import system searches in order.
    (tmp_path / "sed").symlink_to(REPO, target_is_directory=True)
    (tmp_path / "script.py").write_text("import sed\nfrom sed import OpenVocabSegmenter\nprint(sed.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package, not this checkout
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "script.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (
        "`from sed import OpenVocabSegmenter` failed beside a folder named sed; install the package as "
        f"tools/setup_env.sh does (editable_mode=compat):\n{result.stderr[-2000:]}"
    )
    path = result.stdout.strip().splitlines()[-1]
    assert path.endswith(os.path.join("sed", "__init__.py")) and not path.startswith(str(tmp_path))
