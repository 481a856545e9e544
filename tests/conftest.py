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
