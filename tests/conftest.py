"""Suite-wide test settings."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run every test on one torch thread, as runs do by default (``torch_threads: 1``): these
    small networks are fastest that way, and a shared 2-core machine is not oversubscribed."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
