"""The demo's progress lines: stage, fold, epoch and an estimate of the time left from the measured pace."""

from __future__ import annotations

import pytest

from nodescope.pipeline._progress import DemoProgress, EpochLines, TrainingStage


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakeTrainer:
    def __init__(self, epoch: int) -> None:
        self.current_epoch = epoch


def test_lines_name_stage_fold_epoch_and_estimate_from_the_pace():
    clock, lines = FakeClock(), []
    stages = [TrainingStage("bmode", folds=2, epochs=2), TrainingStage("fusion", folds=2, epochs=2, encoders=3)]
    # units: data 2 + bmode 2*2 + fusion 2*2*3 + eval 4 = 22
    p = DemoProgress(lines.append, stages, data_units=2, eval_units=4, min_interval=0, clock=clock)
    p.stage("1/4 data")
    assert lines[-1] == "1/4 data (ETA --)"  # nothing measured yet
    clock.t = 10.0
    p.data_done()  # 2 units in 10 s: 5 s per unit
    p.training("bmode")
    bar = p.callback()
    assert isinstance(bar, EpochLines)
    bar.on_train_start(None, None)
    clock.t = 15.0
    bar.on_train_epoch_end(FakeTrainer(0), None)  # 3 units in 15 s; 19 left -> 95 s
    assert lines[-1] == "  bmode: fold 1/2, epoch 1/2 (ETA 1 min 35 s)"
    bar.on_train_epoch_end(FakeTrainer(1), None)
    bar.on_train_start(None, None)
    bar.on_train_epoch_end(FakeTrainer(0), None)
    assert lines[-1].startswith("  bmode: fold 2/2, epoch 1/2")
    p.training("fusion")
    bar.on_train_start(None, None)
    clock.t = 50.0
    bar.on_train_epoch_end(FakeTrainer(0), None)  # 2 + 3 + 3 = 8 units... plus bmode's 4th epoch not yet: 8 done
    assert p.done == 2 + 3 + 3
    assert lines[-1] == "  fusion: fold 1/2, epoch 1/2 (ETA 1 min 28 s)"  # 50 / 8 * (22 - 8) = 87.5 s


def test_epoch_lines_are_throttled_but_the_last_epoch_is_always_shown():
    clock, lines = FakeClock(), []
    p = DemoProgress(lines.append, [TrainingStage("cdfi", folds=1, epochs=4)], min_interval=5.0, clock=clock)
    p.training("cdfi")
    bar = p.callback()
    bar.on_train_start(None, None)
    for epoch in range(4):
        clock.t += 1.0
        bar.on_train_epoch_end(FakeTrainer(epoch), None)
    assert [ln.split(" (")[0] for ln in lines] == ["  cdfi: fold 1/1, epoch 1/4", "  cdfi: fold 1/1, epoch 4/4"]


def test_disabled_bar_reports_nothing_and_unknown_stage_is_an_error():
    lines: list[str] = []
    p = DemoProgress(lines.append, [TrainingStage("bmode", folds=1, epochs=1)])
    bar = p.callback()
    bar.disable()
    p.training("bmode")
    bar.on_train_start(None, None)
    bar.on_train_epoch_end(FakeTrainer(0), None)
    assert lines == [] and p.done == 0
    with pytest.raises(KeyError):
        p.training("elastography")
