"""tools/web_demo.py in a real browser, used as a visitor uses it: Debian's chromium, driven through chromium-driver
(selenium), on the page served with the quickstart SED (random weights unless SED_WEB_DEMO_WEIGHTS names a
checkpoint, e.g. output/quickstart/model_final.pth from README's Quickstart; the checks hold either way).

Covered: an example run in one click; a batch of a landscape, a portrait and a square image, every one shown whole;
a benchmark vocabulary chosen over typed words; an image wider than the browsers' image formats allow; errors
shown as errors. Set SED_UPDATE_SCREENSHOTS=1 to also refresh README's pictures (docs/images/web_demo_*.jpg).
"""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

pytest.importorskip("gradio", reason="the browser demo needs the web extra: pip install -e .[web]")
pytest.importorskip("selenium", reason="the browser test needs selenium: pip install -e .[web]")
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser"])), None)
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (sudo apt-get install chromium "
        "chromium-driver; .ci/run installs them)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from sed.data.synthetic import SYNTHETIC_CLASSES, render_sample  # noqa: E402
from sed.web.render import PREVIEW_SIDE  # noqa: E402

pytestmark = pytest.mark.slow  # end to end: `python -m pytest -q -m slow`

WAIT_S = 180  # model build and first request on a loaded 2-core machine
WIDTH = 1400
VOCABULARY = ", ".join(SYNTHETIC_CLASSES)
LOADED = "return arguments[0].complete && arguments[0].naturalWidth > 0"  # an <img> shows its picture


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The URL of tools/web_demo.py serving the quickstart SED on a free port."""
    log = tmp_path_factory.mktemp("web_demo") / "server.log"
    port = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        GRADIO_ANALYTICS_ENABLED="False",
        OMP_NUM_THREADS="1",
    )
    opts = ["SEED", "0"]
    if os.environ.get("SED_WEB_DEMO_WEIGHTS"):
        opts += ["MODEL.WEIGHTS", os.environ["SED_WEB_DEMO_WEIGHTS"]]
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tools" / "web_demo.py"),
                "--config-file",
                "configs/quickstart.yaml",
                "--port",
                str(port),
                "--opts",
                *opts,
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
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
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WIDTH},1000"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Synthetic mosaics of the quickstart's classes: {name: path} of a landscape, a portrait and a square."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    paths = {}
    for name, (height, width) in {"landscape": (200, 480), "portrait": (480, 200), "square": (300, 300)}.items():
        paths[name] = folder / f"{name}.png"
        Image.fromarray(render_sample(rng, height, width)[0]).save(paths[name])
    return paths


def open_page(browser, url):
    browser.set_window_size(WIDTH, 1000)
    browser.get(url)
    wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.05)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#images input[type=file]")))
    return wait


def upload(browser, wait, paths):
    browser.find_element(By.CSS_SELECTOR, "#images input[type=file]").send_keys("\n".join(map(str, paths)))
    for path in paths:
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#input-previews"), path.name))


def type_words(browser, words):
    field = browser.find_element(By.CSS_SELECTOR, "#vocabulary textarea")
    field.clear()
    field.send_keys(words)


def segment(browser, wait, expected_status):
    """Clicks Segment, checks the button is disabled while it runs, and waits for the status line."""
    button = browser.find_element(By.CSS_SELECTOR, "#run")
    button.click()
    return wait_for_status(browser, wait, expected_status)


def wait_for_status(browser, wait, expected_status):
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#status"), expected_status))
    wait.until(lambda _: browser.find_element(By.CSS_SELECTOR, "#run").is_enabled())  # re-enabled when done
    return browser.find_element(By.CSS_SELECTOR, "#status .sed-status")


def cards(browser, wait, count):
    """The result cards, once `count` are there with every picture loaded."""
    wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#result .sed-card")) == count)
    wait.until(
        lambda _: all(
            browser.execute_script(LOADED, img) for img in browser.find_elements(By.CSS_SELECTOR, "#result img")
        )
    )
    return browser.find_elements(By.CSS_SELECTOR, "#result .sed-card")


def assert_shown_whole(browser, card):
    """The card's input and segmentation are shown whole: aspect ratio kept, inside the page's width, in the page's
    flow (no box scrolls them), the mask exactly over its input."""
    source, under, mask = card.find_elements(By.CSS_SELECTOR, "img")
    for img in (source, mask):
        natural_width, natural_height = int(img.get_attribute("naturalWidth")), int(img.get_attribute("naturalHeight"))
        shown = img.rect
        assert shown["width"] > 0 and abs(shown["height"] - shown["width"] * natural_height / natural_width) <= 1.5
        assert 0 <= shown["x"] and shown["x"] + shown["width"] <= WIDTH
    assert under.rect == mask.rect
    clipped = browser.execute_script(
        "for (let e = arguments[0]; e; e = e.parentElement) {"
        "  const s = getComputedStyle(e);"
        "  if (e.scrollHeight > e.clientHeight + 1 && /(auto|scroll|hidden)/.test(s.overflowY)"
        "      && e !== document.documentElement && e !== document.body) return e.id || e.className; }"
        "return null;",
        mask,
    )
    assert clipped is None, f"the result scrolls inside {clipped!r}"


def screenshot(browser, tmp_path, name, selector=None):
    """Saves the whole page (the window grown to its height), or the element at `selector`, as
    docs/images/web_demo_<name>.jpg when SED_UPDATE_SCREENSHOTS is set."""
    path = tmp_path / f"web_demo_{name}.png"
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, min(height + 20, 4000))  # pictures are sized in px, not by the window
    time.sleep(0.3)
    if selector:
        browser.find_element(By.CSS_SELECTOR, selector).screenshot(str(path))
    else:
        browser.save_screenshot(str(path))
    browser.set_window_size(WIDTH, 1000)
    if os.environ.get("SED_UPDATE_SCREENSHOTS"):  # JPEG: a fifth of the PNG's size with the textures
        Image.open(path).convert("RGB").save(REPO / "docs" / "images" / f"{path.stem}.jpg", quality=85)


def download(browser, fragment):
    link = next(
        a for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a") if fragment in a.get_attribute("href")
    )
    return urllib.request.urlopen(link.get_attribute("href")).read()


def test_example_runs_in_one_click(server, browser, tmp_path):
    wait = open_page(browser, server)
    # the page renders the examples' table after the form: wait for it, then count
    wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#examples img")) >= 3)
    examples = browser.find_elements(By.CSS_SELECTOR, "#examples img")
    assert len(examples) == 3
    wait.until(lambda _: all(browser.execute_script(LOADED, img) for img in examples))  # thumbnails
    examples[0].click()
    status = wait_for_status(browser, wait, "Segmented 1 image over your 8 classes")
    assert "sed-ok" in status.get_attribute("class")
    assert browser.find_element(By.CSS_SELECTOR, "#vocabulary textarea").get_attribute("value") == VOCABULARY
    (card,) = cards(browser, wait, 1)
    assert_shown_whole(browser, card)
    legend = [item.text for item in card.find_elements(By.CSS_SELECTOR, ".sed-legend li")]
    assert legend and all(item.split("\n")[0] in SYNTHETIC_CLASSES for item in legend if not item.startswith("+"))
    screenshot(browser, tmp_path, "example")


def test_batch_of_landscape_portrait_and_square_shows_every_image_whole(server, browser, images, tmp_path):
    wait = open_page(browser, server)
    upload(browser, wait, list(images.values()))
    type_words(browser, VOCABULARY.replace("grass", "grass/lawn"))
    segment(browser, wait, "Segmented 3 images over your 8 classes (sky, grass, water, road, sand, snow, ...)")
    shown = cards(browser, wait, 3)
    assert [card.get_attribute("data-name") for card in shown] == [p.name for p in images.values()]
    for card in shown:
        assert_shown_whole(browser, card)
    with zipfile.ZipFile(io.BytesIO(download(browser, ".zip"))) as archive:
        names = archive.namelist()
        classes = json.loads(archive.read("classes.json"))
        assert classes == [name.replace("grass", "grass, lawn") for name in SYNTHETIC_CLASSES]
        colored = Image.open(io.BytesIO(archive.read("01_portrait_colored.png")))
    assert colored.size == (200, 480) and "01_portrait_labels.png" in names and "summary.json" in names
    screenshot(browser, tmp_path, "batch", "#result")


def test_benchmark_vocabulary_is_used_instead_of_typed_words(server, browser, images, tmp_path):
    wait = open_page(browser, server)
    upload(browser, wait, [images["square"]])
    type_words(browser, "cat, dog")
    browser.find_element(By.XPATH, "//*[@id='vocabulary-source']//label[contains(., 'benchmark')]").click()
    wait.until(EC.invisibility_of_element_located((By.CSS_SELECTOR, "#vocabulary textarea")))
    field = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#benchmark input")))
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("ADE20K, 150")
    option = "//*[contains(@class, 'item') and contains(., 'ADE20K, 150 classes')]"
    wait.until(EC.element_to_be_clickable((By.XPATH, option))).click()
    segment(browser, wait, "Segmented 1 image over the ADE20K vocabulary (150 classes)")
    (card,) = cards(browser, wait, 1)
    names = {item.text.split("\n")[0] for item in card.find_elements(By.CSS_SELECTOR, ".sed-legend li")}
    assert not names & {"cat", "dog"}
    screenshot(browser, tmp_path, "benchmark")


def test_image_wider_than_browsers_allow_gets_a_preview_and_full_size_files(server, browser, tmp_path):
    wide = tmp_path / "panorama.png"
    Image.fromarray(render_sample(np.random.default_rng(2), 240, 16600)[0]).save(wide)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    wait = open_page(browser, server)
    upload(browser, wait, [wide, notes])
    type_words(browser, VOCABULARY)
    browser.find_element(By.CSS_SELECTOR, "#run").click()
    wait.until(lambda _: not browser.find_element(By.CSS_SELECTOR, "#run").is_enabled())  # disabled while running
    status = wait_for_status(browser, wait, "Segmented 1 image over your 8 classes")
    assert "skipped notes.png: not an image file" in status.text and "sed-warning" in status.get_attribute("class")
    (card, failed) = cards(browser, wait, 2)
    assert "Not segmented: not an image file" in failed.text
    assert int(card.find_element(By.CSS_SELECTOR, ".sed-mask").get_attribute("naturalWidth")) <= PREVIEW_SIDE
    assert_shown_whole(browser, card)
    assert Image.open(io.BytesIO(download(browser, "_colored.png"))).size == (16600, 240)
    labels = Image.open(io.BytesIO(download(browser, "_labels.png")))
    assert labels.size == (16600, 240) and np.asarray(labels).max() < len(SYNTHETIC_CLASSES)
    screenshot(browser, tmp_path, "large", "#result")


def test_mistakes_are_shown_as_errors(server, browser, images):
    wait = open_page(browser, server)
    upload(browser, wait, [images["square"]])
    type_words(browser, "sky")
    status = segment(browser, wait, "Type at least two classes, separated by commas")
    assert "sed-error" in status.get_attribute("class") and status.text.startswith("Error:")
    color = status.value_of_css_property("color")  # "rgba(138, 20, 20, 1)": red, not the page's black
    red, green, blue = (int(c) for c in color[color.index("(") + 1 :].split(",")[:3])
    assert red > 2 * max(green, blue)
