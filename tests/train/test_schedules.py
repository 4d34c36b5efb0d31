"""Schedules against hand-computed values at chosen steps."""

from __future__ import annotations

import pytest

from disco.errors import ConfigError
from disco.train.config import ScheduleConfig
from disco.train.schedules import Schedule


def test_constant_is_one_everywhere() -> None:
    s = Schedule()
    assert [s(t) for t in (0, 1, 10, 10**6)] == [1.0, 1.0, 1.0, 1.0]


def test_linear_warmup_values() -> None:
    s = Schedule("linear", start=0.2, warmup_steps=100, delay_steps=10)
    # before the delay: start; then start + (1 - start) * (t - delay) / warmup; then 1
    assert s(0) == pytest.approx(0.2)
    assert s(9) == pytest.approx(0.2)
    assert s(10) == pytest.approx(0.2)
    assert s(60) == pytest.approx(0.2 + 0.8 * 50 / 100)
    assert s(110) == 1.0
    assert s(5000) == 1.0


def test_linear_without_warmup_is_one() -> None:
    assert Schedule("linear", warmup_steps=0)(0) == 1.0


def test_cyclic_values() -> None:
    s = Schedule("cyclic", start=0.0, period=100, ratio=0.5)
    # ramp 0 -> 1 over the first 50 steps of every 100-step cycle, then flat at 1
    assert s(0) == 0.0
    assert s(25) == pytest.approx(0.5)
    assert s(49) == pytest.approx(49 / 50)
    assert s(50) == 1.0
    assert s(99) == 1.0
    assert s(100) == 0.0
    assert s(125) == pytest.approx(0.5)


def test_from_config_and_validation() -> None:
    s = Schedule.from_config(ScheduleConfig(kind="linear", warmup_steps=4))
    assert s(2) == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        Schedule("cyclic", period=0)
    with pytest.raises(ConfigError):
        Schedule("exponential")


def test_linear_decay_to_end() -> None:
    # start above end: the same ramp decays, e.g. a variance floor at full weight for 150 steps, then down to 0.001
    s = Schedule.from_config(ScheduleConfig(kind="linear", start=1.0, end=0.001, delay_steps=150, warmup_steps=250))
    assert s(0) == 1.0 and s(150) == 1.0
    assert s(275) == pytest.approx(1.0 + (0.001 - 1.0) * 125 / 250)
    assert s(400) == pytest.approx(0.001) and s(10**5) == pytest.approx(0.001)
    # the former way to write a decay (start as a multiple of a small weight) gives the same multiplier ratio
    old = Schedule("linear", start=1000.0, delay_steps=150, warmup_steps=250)
    assert [old(t) * 0.001 for t in (0, 275, 400)] == pytest.approx([s(t) for t in (0, 275, 400)])
