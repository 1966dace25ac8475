"""Blockwise all-pairs passes: the only code that touches every (i, j) pair of embeddings.

Rows are processed in blocks of ``block`` x N float32 similarities on the inputs' device, so memory is
O(N·d + block·N) and no N x N matrix ever exists. Each pass returns per-row sufficient statistics that the
metrics and the bootstrap reuse, so the N² work happens once per measurement, never per resample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OVERLAP_BINS = 200
"""Bins of the histograms behind ``pos_neg_overlap`` and ``matched_overlap`` (equal width on [-1, 1])."""

EXACT_AUC_MAX_N = 20_000
"""Up to this many pairs the AUC is exact (rank-based); above it, histogram-based."""

GRID_BINS = OVERLAP_BINS * 256
"""The fine grid on [-1, 1] (51,200 bins, width 3.9e-5) that buckets every cosine once: its bins nest in
the overlap histogram's, it narrows each exact rank search to a few candidates, and above
``EXACT_AUC_MAX_N`` it is the histogram the AUC is read from."""

_DEFAULT_BLOCK_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 26}


def block_rows(n: int, device: torch.device, block_elements: int | None = None) -> int:
    """Rows per block so that one block of similarities holds about ``block_elements`` floats."""
    budget = block_elements or _DEFAULT_BLOCK_ELEMENTS.get(device.type, 1 << 22)
    return max(1, min(n, budget // max(n, 1)))


def histogram_bin(values: torch.Tensor, bins: int) -> torch.Tensor:
    """Index (int64) of the equal-width bin on [-1, 1] that holds each value; outside values clamp.

    Matches ``numpy.histogram(values, bins, range=(-1, 1))``: bins are half-open, the last is closed.
    """
    return _bin_index(values.float(), bins).long()


def _bin_index(values: torch.Tensor, bins: int) -> torch.Tensor:
    """``histogram_bin`` as int32, fast: two in-place passes, and truncation equals floor for every
    value >= -1 (the clamp catches rounding just below -1)."""
    import torch

    index = values.add(1.0).mul_(bins / 2.0).to(torch.int32)
    return index.clamp_(0, bins - 1)


@dataclass(frozen=True)
class CrossModalStats:
    """What one pass over all image-text pairs (x_i, y_j), i != j, learns about the negatives.

    Negatives are all i != j, minus pairs whose groups are equal when groups are given. ``auc_numerator``
    is Σ over (positive k, negative (i, j)) of [s_kk > s_ij] + ½[s_kk = s_ij]. Per pair index m:
    ``pos_wins[m]`` is that sum over the negatives for positive m, ``row_wins[m]`` / ``col_wins[m]`` the
    sum over positives for the negatives in row m / column m, ``row_count[m] + col_count[m]`` the
    negatives that involve m, and ``row_col_hist[m]`` the histogram (OVERLAP_BINS) of those negatives.
    """

    negative_count: float
    negative_hist: torch.Tensor
    auc_numerator: float
    auc_exact: bool
    pos_wins: torch.Tensor
    row_wins: torch.Tensor
    col_wins: torch.Tensor
    row_count: torch.Tensor
    col_count: torch.Tensor
    row_col_hist: torch.Tensor


_GRID_SHIFT = 8
"""GRID_BINS = OVERLAP_BINS << 8: shifting a grid bin right by 8 gives its overlap-histogram bin."""


class _PositiveGrid:
    """The positives' counts on the fine grid: how many lie below each grid bin and in it.

    Index GRID_BINS is the "not a negative" bin: it wins nothing and is counted nowhere.
    """

    def __init__(self, positives: torch.Tensor, exact: bool) -> None:
        import torch

        self.n = int(positives.shape[0])
        self.sorted, self.order = torch.sort(positives)
        self.bins = histogram_bin(positives, GRID_BINS)
        counts = torch.bincount(self.bins, minlength=GRID_BINS + 1).to(torch.float64)
        below = counts.cumsum(0) - counts
        below[GRID_BINS] = self.n
        # A negative in grid bin b beats every positive above the bin and ties with those in it
        # (histogram mode). In exact mode, bins that hold a positive get -1: "rank me exactly".
        wins = self.n - below - 0.5 * counts
        if exact:
            wins[counts > 0] = -1.0
        self.wins = wins.to(torch.float32)


class _Workspace:
    """Reusable (block, N) buffers for one pass: similarities, scaled values, bins, wins, a mask."""

    def __init__(self, rows: int, n: int, device: torch.device) -> None:
        import torch

        size = rows * n
        self.n = n
        self.sims = torch.empty(size, device=device)
        self.scaled = torch.empty(size, device=device)
        self.grid_bin = torch.empty(size, dtype=torch.int64, device=device)
        self.overlap_bin = torch.empty(size, dtype=torch.int64, device=device)
        self.wins = torch.empty(size, device=device)
        self.mask = torch.empty(size, dtype=torch.bool, device=device)

    def views(self, rows: int) -> tuple[torch.Tensor, ...]:
        """(rows, N) views of every buffer, in the order of the attributes above."""
        size = rows * self.n
        buffers = (self.sims, self.scaled, self.grid_bin, self.overlap_bin, self.wins, self.mask)
        return tuple(buffer[:size].view(rows, self.n) for buffer in buffers)


def cross_modal_pass(
    image: torch.Tensor,
    text: torch.Tensor,
    positives: torch.Tensor,
    groups: torch.Tensor | None,
    *,
    block_elements: int | None = None,
    exact_auc: bool | None = None,
) -> CrossModalStats:
    """Histogram and rank every negative image-text cosine against the positive cosines.

    Every cosine is bucketed once on the GRID_BINS grid. A negative in a grid bin that holds no
    positive is ranked exactly by the grid alone; when ``exact_auc`` (default: N <= EXACT_AUC_MAX_N)
    the few negatives that share a bin with a positive are ranked by binary search among the sorted
    positives, otherwise they count as ties with that bin's positives (a histogram AUC, error below
    half the probability mass of one 3.9e-5-wide bin).
    """
    import torch

    n = int(image.shape[0])
    device = image.device
    exact = n <= EXACT_AUC_MAX_N if exact_auc is None else exact_auc
    step = block_rows(n, device, block_elements)
    grid = _PositiveGrid(positives, exact)
    width = OVERLAP_BINS + 1  # the last overlap bin collects the non-negatives

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=torch.float64, device=device)

    row_hist, col_hist = zeros(n, width), zeros(n, width)
    row_wins, col_wins = zeros(n), zeros(n)
    grid_hist = zeros(GRID_BINS + 1)  # negatives ranked by the grid alone, per grid bin
    rank_diff = zeros(n + 1)  # exactly ranked negatives: +½ at #below and at #at-or-below
    columns = torch.arange(n, device=device)
    one = torch.ones(1, 1, dtype=torch.float64, device=device)
    # Block-sized buffers are allocated once: a fresh multi-megabyte tensor per block costs page
    # faults that take longer than the arithmetic on it.
    work = _Workspace(step, n, device)
    text_t = text.T
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = stop - start
        sims, scaled, grid_bin, overlap_bin, wins, shared_mask = work.views(block)
        torch.matmul(image[start:stop], text_t, out=sims)
        torch.add(sims, 1.0, out=scaled).mul_(GRID_BINS / 2.0)
        # Truncation equals floor for every cosine >= -1; the clamp catches rounding below -1.
        grid_bin.copy_(scaled).clamp_(0, GRID_BINS - 1)
        if groups is None:
            grid_bin[torch.arange(block, device=device), columns[start:stop]] = GRID_BINS
        else:
            grid_bin.masked_fill_(groups[start:stop, None] == groups[None, :], GRID_BINS)

        torch.bitwise_right_shift(grid_bin, _GRID_SHIFT, out=overlap_bin)
        row_hist[start:stop].scatter_add_(1, overlap_bin, one.expand(block, n))
        col_hist.scatter_add_(1, overlap_bin.T, one.expand(n, block))

        torch.index_select(grid.wins, 0, grid_bin.view(-1), out=wins.view(-1))
        if exact:
            shared = torch.nonzero(torch.lt(wins, 0, out=shared_mask), as_tuple=True)
            values = sims[shared]
            below = torch.searchsorted(grid.sorted, values, right=False)
            at_or_below = torch.searchsorted(grid.sorted, values, right=True)
            wins[shared] = n - 0.5 * (below + at_or_below).float()
            rank_diff += 0.5 * torch.bincount(below, minlength=n + 1)
            rank_diff += 0.5 * torch.bincount(at_or_below, minlength=n + 1)
            grid_bin[shared] = GRID_BINS
            del values, below, at_or_below, shared
        grid_hist += torch.bincount(grid_bin.view(-1), minlength=GRID_BINS + 1)
        # float32 sums of at most N wins of at most N each: relative error ~1e-7.
        row_wins[start:stop] += wins.sum(1)
        col_wins += wins.sum(0)

    negatives_per_bin = grid_hist[:GRID_BINS]
    below_bin = negatives_per_bin.cumsum(0) - negatives_per_bin
    pos_wins = (below_bin + 0.5 * negatives_per_bin)[grid.bins]
    if exact:
        # The positive of rank r wins ½ against an exactly ranked negative with r >= #below and ½
        # more when r >= #at-or-below.
        pos_wins[grid.order] += rank_diff.cumsum(0)[:n]

    row_hist_2d = row_hist[:, :OVERLAP_BINS]
    col_hist_2d = col_hist[:, :OVERLAP_BINS]
    row_count = row_hist_2d.sum(1)
    return CrossModalStats(
        negative_count=float(row_count.sum()),
        negative_hist=row_hist_2d.sum(0),
        auc_numerator=float(row_wins.sum()),
        auc_exact=exact,
        pos_wins=pos_wins,
        row_wins=row_wins,
        col_wins=col_wins,
        row_count=row_count,
        col_count=col_hist_2d.sum(1),
        row_col_hist=row_hist_2d + col_hist_2d,
    )


def uniformity_row_sums(unit: torch.Tensor, *, block_elements: int | None = None) -> torch.Tensor:
    """r_i = Σ_{j != i} exp(−2‖u_i − u_j‖²) = Σ_{j != i} exp(4 u_i·u_j − 4) for unit rows, in float64.

    Only the upper triangle of the Gram matrix is computed; each off-diagonal block adds to the row
    sums of its rows and of its columns.
    """
    import torch

    n = int(unit.shape[0])
    step = block_rows(n, unit.device, block_elements)
    sums = torch.zeros(n, dtype=torch.float64, device=unit.device)
    for start in range(0, n, step):
        stop = min(n, start + step)
        kernel = (unit[start:stop] @ unit[start:].T).mul_(4.0).sub_(4.0).exp_()
        kernel[:, : stop - start].fill_diagonal_(0.0)
        # float32 sums of at most N terms in (0, 1]: relative error ~1e-7.
        sums[start:stop] += kernel.sum(1)
        sums[stop:] += kernel[:, stop - start :].sum(0)
    return sums
