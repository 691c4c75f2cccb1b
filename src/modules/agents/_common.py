"""Shape checks and config access shared by the agents."""
from __future__ import annotations

from typing import Any

from torch import Tensor


def arg(args: Any, key: str, default: Any) -> Any:
    """``args.key`` or ``default`` when the key is absent or None."""
    value = getattr(args, key, None)
    return default if value is None else value


def check_inputs(agent: str, inputs: Tensor, ndim: int, input_shape: int) -> None:
    """Raise a clear error unless ``inputs`` is ``[b, a, e]`` (ndim 3) or ``[T, b, a, e]`` (4)."""
    want = "[batch, agents, input_shape]" if ndim == 3 else "[T, batch, agents, input_shape]"
    if inputs.dim() != ndim or inputs.shape[-1] != input_shape:
        raise ValueError(f"{agent}: inputs must be {want} with input_shape={input_shape}, got "
                         f"{list(inputs.shape)}")


def flat_hidden(agent: str, h: Tensor, n: int, dim: int) -> Tensor:
    """Reshape a hidden tensor with ``n * dim`` elements (e.g. [b, a, dim]) to ``[n, dim]``."""
    if h.numel() != n * dim:
        raise ValueError(f"{agent}: hidden state must hold batch*agents={n} rows of {dim} "
                         f"(use init_hidden(batch*agents)), got shape {list(h.shape)}")
    return h.reshape(n, dim)


def n_actions(agent: str, args: Any) -> int:
    value = getattr(args, "n_actions", None)
    if value is None or int(value) <= 0:
        raise ValueError(f"{agent}: args.n_actions must be a positive int (set by the env info), "
                         f"got {value!r}")
    return int(value)
