"""Shared test fixtures: the third-party test data folder beside the repo, and nets built once."""
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
