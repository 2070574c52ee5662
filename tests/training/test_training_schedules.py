"""Schedule shapes: warm-up rises to the peak, then decays to the end value and stays there."""

import numpy as np
import pytest
from keras import ops

from course_lib.training.schedules import OneCycle, WarmupLinearDecay, scale_learning_rate


def values(schedule, steps):
    return np.array([float(ops.convert_to_numpy(schedule(s))) for s in steps])


def test_one_cycle_shape():
    schedule = OneCycle(peak_lr=0.1, total_steps=100, warmup_fraction=0.2, div_factor=10, end_lr=1e-4)
    lr = values(schedule, range(0, 121))
    np.testing.assert_allclose(lr[0], 0.01, rtol=1e-5)
    assert np.all(np.diff(lr[:21]) > 0)  # warm-up rises
    np.testing.assert_allclose(lr[20], 0.1, rtol=1e-5)  # peak
    assert lr.max() == pytest.approx(0.1, rel=1e-5)
    assert np.all(np.diff(lr[20:101]) < 0)  # anneal falls
    np.testing.assert_allclose(lr[100:], 1e-4, rtol=1e-4)  # end value, constant after


def test_warmup_linear_decay_shape():
    schedule = WarmupLinearDecay(peak_lr=1.0, total_steps=50, warmup_steps=10, end_lr=0.1)
    lr = values(schedule, [0, 5, 10, 30, 50, 60])
    np.testing.assert_allclose(lr, [0.0, 0.5, 1.0, 0.55, 0.1, 0.1], rtol=1e-5, atol=1e-7)


def test_schedule_config_round_trip():
    schedule = OneCycle(peak_lr=0.1, total_steps=100)
    again = OneCycle.from_config(schedule.get_config())
    np.testing.assert_allclose(values(again, [0, 30, 99]), values(schedule, [0, 30, 99]))


def test_bad_steps_raise():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupLinearDecay(peak_lr=1.0, total_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        OneCycle(peak_lr=1.0, total_steps=0)


def test_scale_learning_rate():
    assert scale_learning_rate(1e-3, 1024, 128) == pytest.approx(8e-3)
    assert scale_learning_rate(1e-3, 512, 128, rule="sqrt") == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="rule"):
        scale_learning_rate(1e-3, 512, rule="cubic")
    with pytest.raises(ValueError, match="batch_size"):
        scale_learning_rate(1e-3, 0)
