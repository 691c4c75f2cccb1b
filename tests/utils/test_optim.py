import pytest
import torch

from utils.optim import check_finite, gradient_step


def test_non_finite_loss_names_the_cause_and_the_fix():
    with pytest.raises(FloatingPointError, match=r"critic loss became nan\. lower lr"):
        check_finite(torch.tensor(float("nan")), "critic loss", "lower lr")
    check_finite(torch.tensor(1.0), "critic loss", "lower lr")


def test_gradient_step_clips_and_returns_the_pre_clip_norm():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=1.0)
    loss = (w * torch.tensor([3.0, 4.0])).sum()  # gradient [3, 4], norm 5
    norm = gradient_step(opt, loss, "loss", "", params=[w], clip=1.0)
    assert norm == pytest.approx(5.0)
    assert torch.allclose(w.detach(), torch.tensor([-0.6, -0.8]))  # step along the clipped gradient
    assert gradient_step(opt, (w ** 2).sum(), "loss", "") is None


def test_a_bad_loss_does_not_touch_the_parameters():
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=1.0)
    with pytest.raises(FloatingPointError):
        gradient_step(opt, (w * float("inf")).sum(), "actor loss", "")
    assert torch.equal(w.detach(), torch.ones(2))
