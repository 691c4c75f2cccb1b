import pytest
import torch

from utils.config import ConfigError
from utils.device import resolve_device


def test_auto_picks_what_torch_sees():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_fix():
    with pytest.raises(ConfigError, match="device=cuda:1 but torch sees no CUDA GPU. Use device=cpu"):
        resolve_device("cuda:1")


def test_torch_threads_sets_and_restores():
    from utils.device import torch_threads
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with torch_threads(0):                       # 0 = leave as it is
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="thread count must be >= 0"):
        with torch_threads(-1):
            pass
