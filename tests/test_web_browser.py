"""The app in Debian's Chromium (Playwright): frames, keys, a click on a layer name, the fake camera,
dropped and picked images, the PNG download. WEB_SCREENSHOT=PATH writes the page's screenshot there
(docs/web_screenshot.png is made so)."""
import base64
import os
import time

import cv2
import numpy as np
import pytest

from app.ui import panes
from app.ui.app import App
from app.web.camera import BrowserCamera
from tests import ui_support, web_support

VIEWPORT = {"width": 1500, "height": 1000}


@pytest.fixture(scope="module")
def server(tmp_path_factory, testdata):
    server = web_support.start_server(tmp_path_factory.mktemp("web"))
    yield server
    server.stop()


@pytest.fixture
def page(chromium, server):
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    started = time.monotonic()
    page.goto(server.url)
    wait_frames(page, 1, 20)
    page.first_frame_seconds = time.monotonic() - started
    yield page
    context.close()
    assert not problems


def frames(page) -> int:
    return int(page.evaluate("document.getElementById('view').dataset.frames || '0'"))


def wait_frames(page, count: int, seconds: float = 10) -> None:
    page.wait_for_function(f"Number(document.getElementById('view').dataset.frames || 0) >= {count}",
                           polling=100, timeout=seconds * 1000)


def canvas(page) -> np.ndarray:
    """The canvas's pixels (BGR) as the page drew them."""
    url = page.evaluate("document.getElementById('view').toDataURL('image/png')")
    return cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)


def changes(page, before: np.ndarray, seconds: float = 10, box=None) -> np.ndarray:
    """The canvas once it differs from ``before`` (inside ``box`` = (top, left, height, width) if given)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = canvas(page)
        if now.shape != before.shape or not np.array_equal(crop(now, box), crop(before, box)):
            return now
        time.sleep(0.1)
    raise AssertionError("the canvas did not change")


def crop(image, box):
    if box is None:
        return image
    top, left, height, width = box
    return image[top:top + height, left:left + width]


def only_tab(server):
    """The page's tab (the last test's closed tab may take a moment to go)."""
    deadline = time.monotonic() + 5
    while len(server.tabs) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.tabs) == 1
    return next(iter(server.tabs.values()))


def test_a_frame_with_contrast_within_20_s(page):
    assert page.first_frame_seconds < 20
    wait_frames(page, 3)
    picture = canvas(page)
    assert picture.shape[:2] == (978, 1500)
    assert web_support.contrast(picture) > 100
    if os.environ.get("WEB_SCREENSHOT"):
        page.screenshot(path=os.environ["WEB_SCREENSHOT"])


def test_keys_change_the_canvas(page, server):
    tab = only_tab(server)
    for key, check in (("o", lambda state: state.layer == 1), ("l", lambda state: state.unit == 1),
                       ("b", lambda state: state.backprop_mode != "off"),
                       ("n", lambda state: state.backprop_view != "raw"), ("h", lambda state: state.help)):
        before = canvas(page)
        page.keyboard.press(key)
        changes(page, before)
        assert check(tab.live.state), key
    page.keyboard.press("h")
    before = canvas(page)
    page.keyboard.press("ArrowLeft")
    changes(page, before)
    assert tab.live.state.unit == 0
    before = canvas(page)
    page.keyboard.press("PageDown")
    changes(page, before)
    wait_for_frame_named(tab, "digit_1.png")


def test_two_tabs_one_closed_the_other_goes_on_and_threads_return(chromium, page, server):
    threads = web_support.web_threads()
    other = chromium.new_context(viewport=VIEWPORT)
    second = other.new_page()
    second.goto(server.url)
    wait_frames(second, 1, 20)
    assert len(web_support.web_threads()) > len(threads)
    other.close()   # closed while frames flow
    count = frames(page)
    page.keyboard.press("o")
    wait_frames(page, count + 1)
    deadline = time.monotonic() + 10
    while web_support.web_threads() - threads and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not {thread.name for thread in web_support.web_threads() - threads}


def test_a_click_on_a_layer_name_selects_it(page, server):
    app = App(ui_support.mnist_net(), server.settings)
    rect = app.rects["control"]
    view = only_tab(server).live.view
    y = rect.top + rect.height // 2
    name = [x for x in range(rect.left, rect.left + rect.width) if panes.hit(view, app.rects, y, x) == ("select_layer", 3)]
    x = name[len(name) // 2]   # the middle of the third layer's name
    box = page.locator("#view").bounding_box()
    scale = box["width"] / 1500
    page.mouse.click(box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale)
    deadline = time.monotonic() + 10
    while only_tab(server).live.state.layer != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert only_tab(server).live.state.layer == 3


def test_the_browser_camera_feeds_the_input_pane(page, server):
    rect = App(ui_support.mnist_net(), server.settings).rects["input"]
    box = (rect.top, rect.left, rect.height, rect.width)
    page.click("#camera-button")
    tab = only_tab(server)
    deadline = time.monotonic() + 20
    while not (isinstance(tab.live.inputs.source, BrowserCamera) and tab.live.inputs.latest().images) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    first = changes(page, canvas(page), 20, box)
    second = changes(page, first, 20, box)   # the fake camera's pattern moves
    assert web_support.contrast(crop(second, box)) > 50
    assert tab.live.inputs.latest().name == "browser camera"
    page.keyboard.press("C")   # back to the files
    deadline = time.monotonic() + 10
    while isinstance(tab.live.inputs.source, BrowserCamera) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not isinstance(tab.live.inputs.source, BrowserCamera)


def red_png() -> bytes:
    image = np.zeros((96, 96, 3), np.uint8)
    image[..., 2] = 255
    cv2.putText(image, "4", (20, 78), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 9)
    return cv2.imencode(".png", image)[1].tobytes()


def test_picked_and_dropped_images_join_the_file_list(page, server):
    tab = only_tab(server)
    page.set_input_files("#picker", files=[{"name": "picked.png", "mimeType": "image/png", "buffer": red_png()}])
    wait_for_frame_named(tab, "picked.png (uploaded)")
    page.evaluate("""(data) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", base64.b64encode(red_png()).decode())
    frame = wait_for_frame_named(tab, "dropped.png (uploaded)")
    assert frame.count == 5 and frame.image[..., 2].max() == 255
    rect = App(ui_support.mnist_net(), server.settings).rects["input"]
    shown = changes(page, canvas(page), 5) if not is_red(crop(canvas(page), (rect.top, rect.left, 50, 50))) \
        else canvas(page)
    assert is_red(crop(shown, (rect.top, rect.left, 50, 50)))


def is_red(image) -> bool:
    return bool(np.median(image[..., 2]) > 200 and np.median(image[..., 1]) < 60)


def wait_for_frame_named(tab, name: str, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = tab.live.inputs.latest()
        if frame is not None and frame.name == name:
            return frame
        time.sleep(0.05)
    raise AssertionError(f"no frame named {name!r}; the last: {tab.live.inputs.latest().name!r}")


def test_save_view_downloads_the_picture_as_png(page, server):
    for press in (lambda: page.click("#save-button"), lambda: page.keyboard.press("W")):
        with page.expect_download(timeout=10000) as download:
            press()
        name = download.value.suggested_filename
        picture = cv2.imread(download.value.path())
        assert name.startswith("mnist-8_") and name.endswith(".png")
        assert picture.shape[:2] == (978, 1500) and web_support.contrast(picture) > 100
