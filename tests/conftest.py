"""Shared test fixtures: the third-party test data folder beside the repo, nets built once, the atlas's run."""
from pathlib import Path

import pytest

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.skip(f"test data folder {TESTDATA} is missing: put the shared test data there "
                    "(real Caffe and ONNX models, each folder's SOURCE.txt names where it comes from)")
    return TESTDATA


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium driven by Playwright, one per test module (Playwright's own browser
    download is never used). Tests open their own contexts and pages on it and close them.
    Module scope: Playwright's sync API keeps an event loop running in the main thread while it is
    open, and later modules' asyncio.run() must not find one."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (the browser tests drive it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def atlas_run(tmp_path_factory):
    """The four offline jobs over a small real run (tests/atlas_support.py) and its atlas, once per
    session: (units folder, site folder, the files the build wrote)."""
    from tests.atlas_support import LAYERS, build, offline_run
    from app.inputs.samples import default_input_dir

    folder = tmp_path_factory.mktemp("atlas")
    units = offline_run(default_input_dir(folder), folder / "units", LAYERS, "0-3",
                        {"stem": "0-1", "fc": "0-1"})
    site = folder / "site"
    return units, site, build(units, site)
