"""tools/web_demo.py in a real browser: Debian's chromium, driven through chromium-driver (selenium), uploads an
image to the page served with the tiny random-weight SED, types a vocabulary, runs it, and reads the result.

Set SED_UPDATE_SCREENSHOTS=1 to also refresh docs/images/web_demo.png (README's picture) from the run.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

pytest.importorskip("gradio", reason="the browser demo needs the web extra: pip install -e .[web]")
pytest.importorskip("selenium", reason="the browser test needs selenium: pip install -e .[web]")
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser"])), None)
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Debian's chromium and chromium-driver are not installed (sudo apt-get install chromium "
                "chromium-driver; .ci/run installs them)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow  # end to end: `python -m pytest -q -m slow`

VOCABULARY = "cat, dog, grass/lawn, sky"
CLASS_NAMES = ["cat", "dog", "grass, lawn", "sky"]
WAIT_S = 180  # model build and first request on a loaded 2-core machine


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The URL of tools/web_demo.py serving the tiny SED (one prompt template, fixed seed) on a free port."""
    log = tmp_path_factory.mktemp("web_demo") / "server.log"
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "tools" / "web_demo.py"), "--config-file", "configs/tiny_cpu.yaml",
             "--port", str(port), "--opts", "MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"tools/web_demo.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"tools/web_demo.py did not serve {url}:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """A smooth random 120x160 picture (blobs, so labels form regions)."""
    coarse = np.random.default_rng(0).uniform(0, 255, (9, 12, 3)).astype(np.uint8)
    path = tmp_path_factory.mktemp("images") / "street.png"
    Image.fromarray(coarse).resize((160, 120), Image.BILINEAR).save(path)
    return path


def run_request(browser, url, image, vocabulary):
    """Loads the page, uploads `image`, types `vocabulary`, clicks Segment; returns the status line element."""
    browser.get(url)
    wait = WebDriverWait(browser, WAIT_S)
    upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#images input[type=file]")))
    upload.send_keys(str(image))
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#images"), image.stem))  # uploaded
    browser.find_element(By.CSS_SELECTOR, "#vocabulary textarea").send_keys(vocabulary)
    browser.find_element(By.CSS_SELECTOR, "#run").click()
    return wait


def test_uploaded_image_is_segmented_with_the_typed_vocabulary(server, browser, image_file, tmp_path):
    wait = run_request(browser, server, image_file, VOCABULARY)
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status"), "1 segmented over 4 classes"))
    result = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#result img")))
    wait.until(lambda _: int(result.get_attribute("naturalWidth") or 0) > 0)
    assert int(result.get_attribute("naturalWidth")) > 160  # the image with the legend on its right

    summary_link = next(a for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a")
                        if "summary" in a.get_attribute("href"))
    summary = json.loads(urllib.request.urlopen(summary_link.get_attribute("href")).read())
    assert summary["class_names"] == CLASS_NAMES
    found = [c["name"] for c in summary["images"][0]["classes"]]
    assert found and set(found) <= set(CLASS_NAMES)
    table = browser.find_element(By.CSS_SELECTOR, "#areas").text.split("\n")
    assert [line for line in table if line in CLASS_NAMES] == found  # the areas table, largest first
    caption = browser.find_element(By.CSS_SELECTOR, "#result").text
    assert all(name.split(", ")[0] in caption for name in found)  # the legend's class names

    browser.save_screenshot(str(tmp_path / "web_demo.png"))
    if os.environ.get("SED_UPDATE_SCREENSHOTS"):
        shutil.copy(tmp_path / "web_demo.png", REPO / "docs" / "images" / "web_demo.png")


def test_empty_vocabulary_shows_the_error_in_the_page(server, browser, image_file):
    wait = run_request(browser, server, image_file, "  ")
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status"), "The vocabulary is empty"))
    assert "Error" in browser.find_element(By.CSS_SELECTOR, "#status").text
