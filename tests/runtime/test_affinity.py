import os

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.runtime.affinity import pin_host_thread

linux = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")


@pytest.fixture
def restore_affinity():
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    yield cores
    if cores is not None:
        os.sched_setaffinity(0, cores)


@linux
def test_auto_and_off_leave_a_cpu_loop_alone(restore_affinity):
    assert pin_host_thread("auto", torch.device("cpu")) is None
    assert pin_host_thread("off", torch.device("cuda")) is None
    assert os.sched_getaffinity(0) == restore_affinity


@linux
def test_a_named_core_pins_the_thread(restore_affinity):
    core = max(restore_affinity)
    assert pin_host_thread(str(core), torch.device("cpu")) == core
    assert os.sched_getaffinity(0) == {core}


@linux
def test_auto_on_a_gpu_takes_the_last_core(restore_affinity):
    if len(restore_affinity) < 2:
        pytest.skip("one core only")
    assert pin_host_thread("auto", torch.device("cuda")) == max(restore_affinity)


@linux
def test_bad_cores_say_what_is_wrong(restore_affinity):
    with pytest.raises(EngineError, match="core number"):
        pin_host_thread("fast", torch.device("cpu"))
    with pytest.raises(EngineError, match="not one this process may use"):
        pin_host_thread(str(max(restore_affinity) + 1000), torch.device("cpu"))
    assert os.sched_getaffinity(0) == restore_affinity
