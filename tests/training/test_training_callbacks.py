"""TrainingMonitor's numbers with a fake clock; the TensorBoard helper's log folder."""

from types import SimpleNamespace

import pytest

from course_lib.training.callbacks import TrainingMonitor, tensorboard


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_throughput_eta_and_time_to_target():
    clock = FakeClock()
    monitor = TrainingMonitor(
        batch_size=50, target=0.9, start_time=90.0, stop_at_target=True, clock=clock, verbose=False
    )
    model = SimpleNamespace(stop_training=False)
    monitor.set_model(model)
    monitor.set_params({"epochs": 5, "steps": 20})  # 1000 examples per epoch
    monitor.on_train_begin()

    accuracies = [0.5, 0.95]
    for epoch, accuracy in enumerate(accuracies):
        monitor.on_epoch_begin(epoch)
        clock.now += 2.0  # training part of the epoch
        monitor.on_test_begin()
        clock.now += 0.5  # validation
        logs = {"val_accuracy": accuracy}
        monitor.on_epoch_end(epoch, logs)
        assert logs["examples_per_second"] == pytest.approx(500.0)  # 1000 examples / 2 s

    first, second = monitor.records
    assert first["epoch_seconds"] == pytest.approx(2.5)
    assert first["elapsed_seconds"] == pytest.approx(12.5)  # counted from start_time=90
    assert first["eta_seconds"] == pytest.approx(4 * 2.5)
    assert second["eta_seconds"] == pytest.approx(3 * 2.5)
    assert monitor.time_to_target == pytest.approx(15.0)
    assert monitor.epochs_to_target == 2
    assert model.stop_training is True


def test_target_line_printed_once(capsys):
    clock = FakeClock()
    monitor = TrainingMonitor(batch_size=10, target=0.8, clock=clock)
    monitor.set_model(SimpleNamespace(stop_training=False))
    monitor.set_params({"epochs": 3, "steps": 10})
    monitor.on_train_begin()
    for epoch, accuracy in enumerate([0.85, 0.9, 0.95]):
        monitor.on_epoch_begin(epoch)
        clock.now += 1.0
        monitor.on_epoch_end(epoch, {"val_accuracy": accuracy})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert ["target 0.8 reached" in line for line in lines] == [True, False, False]


def test_target_not_reached_and_exact_example_count():
    clock = FakeClock()
    monitor = TrainingMonitor(
        batch_size=64, target=0.99, examples_per_epoch=1000, clock=clock, verbose=False
    )
    monitor.set_model(SimpleNamespace(stop_training=False))
    monitor.set_params({"epochs": 1, "steps": 16})
    monitor.on_train_begin()
    monitor.on_epoch_begin(0)
    clock.now += 4.0  # no validation: the whole epoch is training
    monitor.on_epoch_end(0, {"val_accuracy": 0.5})
    assert monitor.records[0]["examples_per_second"] == pytest.approx(250.0)
    assert monitor.records[0]["eta_seconds"] == 0
    assert monitor.time_to_target is None and monitor.epochs_to_target is None


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        TrainingMonitor(batch_size=0)


def test_tensorboard_log_dir(tmp_path):
    pytest.importorskip("tensorflow")
    callback = tensorboard(tmp_path, name="cnn")
    assert callback.log_dir.startswith(str(tmp_path / "cnn-"))
