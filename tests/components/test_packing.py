"""Packing: index maps pinned by hand, pack/unpack round trips, bad lengths."""
import pytest
import torch

from components.packing import Packing


def test_layout_pinned_by_hand():
    # lengths 2, 3, 0, 3 over T=3: rank order 1, 3, 0 (ties keep batch order), episode 2 is empty
    p = Packing(torch.tensor([2, 3, 0, 3]), 3)
    assert p.order.tolist() == [1, 3, 0, 2]
    assert p.bs_list == [3, 3, 2]
    assert p.offsets == [0, 3, 6, 8]
    assert p.n_rows == 8
    assert p.b_idx.tolist() == [1, 3, 0, 1, 3, 0, 1, 3]
    assert p.t_idx.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert p.r_idx.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert p.row_of.tolist() == [[2, 5, -1], [0, 3, 6], [-1, -1, -1], [1, 4, 7]]


def test_pack_unpack_and_time_major_round_trip():
    p = Packing(torch.tensor([2, 3, 0, 3]), 3)
    x = torch.arange(4 * 3 * 2, dtype=torch.float64).view(4, 3, 2) + 1
    rows = p.pack(x)
    assert rows[:, 0].tolist() == [7, 19, 1, 9, 21, 3, 11, 23]     # x[b, t, 0] = 6b + 2t + 1
    back = p.unpack(rows, fill=-1.0)
    real = p.row_of >= 0
    assert torch.equal(back[real], x[real])
    assert bool((back[~real] == -1).all())
    tm = p.to_time_major(rows)                                      # [T, batch] in rank order
    assert tm[:, :, 0].tolist() == [[7, 19, 1, 0], [9, 21, 3, 0], [11, 23, 0, 0]]
    assert torch.equal(p.from_time_major(tm), rows)


def test_from_mask_and_rows_in():
    mask = torch.tensor([[1., 1., 0.], [1., 0., 0.]])
    steps, slots = Packing.from_mask(mask), Packing.from_mask(mask, extra=1)
    assert steps.bs_list == [2, 1, 0] and slots.bs_list == [2, 2, 1, 0]
    # transition (b=0,t=0) (1,0) (0,1) sit at slot rows 0, 1, 2
    assert slots.rows_in(steps).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="holds slots this one does not"):
        steps.rows_in(slots)


def test_bad_lengths_are_clear_errors():
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 2\]"):
        Packing(torch.tensor([1, 3]), 2)
    with pytest.raises(ValueError, match=r"lengths must be \[batch\]"):
        Packing(torch.ones(2, 2), 2)


def test_all_empty_episodes_pack_to_nothing():
    p = Packing.from_mask(torch.zeros(3, 1), extra=1)            # a batch of empty episodes: slot 0 only
    assert p.bs_list == [3, 0] and p.n_rows == 3


def test_full_length_batches_take_the_view_shortcut_with_the_same_values():
    """All episodes of length T: to/from_time_major are views, equal to the general index path."""
    p = Packing(torch.tensor([3, 3]), 3)
    assert p.full
    x = torch.arange(2 * 3 * 2, dtype=torch.float64).view(2, 3, 2)
    rows = p.pack(x)
    tm = p.to_time_major(rows)
    assert tm[:, :, 0].tolist() == [[0, 6], [2, 8], [4, 10]]        # x[b, t, 0] = 6b + 2t
    assert tm.data_ptr() == rows.data_ptr()                         # no copy
    p.full = False                                                  # the general path, same numbers
    assert torch.equal(p.to_time_major(rows), tm)
    assert torch.equal(p.from_time_major(tm), rows)
    assert not Packing(torch.tensor([3, 2]), 3).full
