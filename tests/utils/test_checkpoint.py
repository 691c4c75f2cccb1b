import os

import pytest
import torch

from utils.checkpoint import checkpoint_on_interrupt, find_checkpoint, load_checkpoint, save_checkpoint


def test_save_find_load_round_trip(tmp_path):
    net = torch.nn.Linear(3, 2)
    for t in (100, 250, 400):
        save_checkpoint(str(tmp_path), t, {"agent": net})
    assert find_checkpoint(str(tmp_path)) == (os.path.join(str(tmp_path), "400"), 400)
    assert find_checkpoint(str(tmp_path), load_step=230)[1] == 250
    assert find_checkpoint(os.path.join(str(tmp_path), "100"))[1] == 100
    other = torch.nn.Linear(3, 2)
    load_checkpoint(os.path.join(str(tmp_path), "400"), {"agent": other, "opt": object()}, required=("agent",))
    assert torch.equal(other.weight, net.weight)
    with pytest.raises(FileNotFoundError, match="critic.pt"):
        load_checkpoint(os.path.join(str(tmp_path), "400"), {"critic": other}, required=("critic",))


def test_find_checkpoint_errors_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        find_checkpoint(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="save_model=True"):
        find_checkpoint(str(tmp_path))


def test_checkpoint_on_interrupt_saves_then_reraises():
    saved = []
    with pytest.raises(KeyboardInterrupt):
        with checkpoint_on_interrupt(lambda: saved.append(1), enabled=True):
            raise KeyboardInterrupt
    assert saved == [1]
    with checkpoint_on_interrupt(lambda: saved.append(2), enabled=True):
        pass
    with pytest.raises(RuntimeError):
        with checkpoint_on_interrupt(lambda: saved.append(3), enabled=False):
            raise RuntimeError("crash")
    assert saved == [1]
