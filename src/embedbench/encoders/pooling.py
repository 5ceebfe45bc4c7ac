"""Token states to vectors (torch): the poolings every transformer plugin shares.

`pool` turns a padded batch of final hidden states into one vector per text (mean, cls or
last-token); it reads the attention mask, so it is right for left and right padding alike.
`span_means` is late chunking's pooling: the mean of each chunk's own token positions.
torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from embedbench.errors import EmbedbenchError

POOLINGS = ("mean", "cls", "last-token")


def check_pooling(mode: str) -> str:
    """`mode` itself when it is one of POOLINGS; an EmbedbenchError naming them otherwise."""
    if mode not in POOLINGS:
        raise EmbedbenchError(f"pooling must be one of {', '.join(POOLINGS)}, got {mode!r}")
    return mode


def pool(hidden, mask, mode: str):
    """(n, t, d) token states + (n, t) 0/1 mask -> (n, d), for either padding side (torch tensors).

    mean: the mean over real tokens; cls: each row's first real token; last-token: its last real token.
    """
    import torch

    check_pooling(mode)
    mask = mask.to(hidden.dtype if hidden.is_floating_point() else torch.float32)
    if mode == "mean":
        summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    if mode == "cls":  # first real token: argmax returns the first maximum
        return hidden[rows, mask.argmax(dim=1)]
    # last-token: the last real token, i.e. the first maximum of the reversed mask
    return hidden[rows, mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)]


def span_means(hidden, spans: Sequence[tuple[int, int, int]]):
    """(n_spans, d) float32: the mean of `hidden[row, start:end]` for each (row, start, end); zeros for an empty span."""
    import torch

    means = [
        hidden[row, start:end].float().mean(dim=0) if end > start
        else hidden.new_zeros(hidden.shape[-1], dtype=torch.float32)
        for row, start, end in spans
    ]
    return torch.stack(means)
