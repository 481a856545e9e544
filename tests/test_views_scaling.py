"""The one robust scale of signed pictures and magnitudes."""
import numpy as np
import pytest

from app.settings import load_settings
from app.views import scaling


def test_peak_is_a_percentile_of_the_nonzero_magnitudes():
    values = np.zeros(10_000)
    values[:100] = -np.arange(1, 101)          # 1 % nonzero: the zeros must not pull the peak to 0
    assert scaling.robust_peak(values, 50) == pytest.approx(50.5)
    assert scaling.robust_peak(values, 100) == 100
    assert scaling.robust_peak(np.zeros(5)) == 0.0


def test_signed_values_saturate_beyond_the_peak_and_keep_zero_in_the_middle():
    values = np.concatenate([np.linspace(-1, 1, 999), [1e6]])
    gray = scaling.signed_gray(values)
    assert gray[-1] == 1.0 and gray[499] == pytest.approx(0.5)
    assert gray[0] < 0.01 and gray[-2] > 0.99      # one huge value does not gray the rest
    assert (scaling.signed_gray(np.zeros(4)) == 0.5).all()


def test_magnitudes_start_at_black():
    norm = scaling.magnitude_unit(np.array([0.0, 1.0, 2.0, 50.0]), percentile=100)
    np.testing.assert_allclose(norm, [0, 0.02, 0.04, 1])


def test_the_setting_documents_the_default():
    assert load_settings().picture_percentile == scaling.PERCENTILE
