"""Blockwise all-pairs passes: the only code that touches every (i, j) pair of embeddings.

Rows are processed in blocks of ``block`` x N float32 similarities on the inputs' device, so memory is
O(N·d + block·N) and no N x N matrix ever exists. Each pass returns per-row sufficient statistics that the
metrics and the bootstrap reuse, so the N² work happens once per measurement, never per resample. The
retrieval ranks are counted from the same similarity blocks as the negatives' histograms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_modgap.errors import ModgapInputError

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

RANK_SLACK = 1e-5
"""Half-width of the band around a rank threshold inside which a float32 similarity is recomputed in
float64 before it is counted. float32 matrix products of unit rows err by under 3e-7 (measured up to
d = 4,096; typically 1e-8), so outside the band the float32 comparison is the float64 one, and every
rank equals a float64 brute force on the same unit rows, exact ties included."""


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


def dot64(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """a[rows[k]] · b[cols[k]] in float64 for every k, in chunks (memory O(chunk·d))."""
    import torch

    out = torch.empty(int(rows.shape[0]), dtype=torch.float64, device=a.device)
    chunk = max(1, (1 << 22) // max(1, int(a.shape[1])))
    for start in range(0, int(rows.shape[0]), chunk):
        stop = start + chunk
        out[start:stop] = (a[rows[start:stop]].double() * b[cols[start:stop]].double()).sum(1)
    return out


def _count(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """True values of a bool matrix along ``dim``, as int32 (summed as bytes: twice as fast as a
    bool sum on CPU)."""
    import torch

    return mask.view(torch.uint8).sum(dim, dtype=torch.int32)


def _check_rounding(error: torch.Tensor) -> None:
    """Refuse ranks from a matrix product whose float32 results stray by RANK_SLACK / 2 or more
    from the float64 ones (TF32 or reduced-precision matmuls): the band would not hold the ties."""
    worst = float(error)
    if worst >= RANK_SLACK / 2:
        raise ModgapInputError(
            f"image and text: float32 similarities differ from float64 by up to {worst:.1e}, "
            f"beyond the {RANK_SLACK / 2:.0e} the exact retrieval ranks allow; a reduced-precision "
            f"matrix product is switched on (TF32). Call "
            f'torch.set_float32_matmul_precision("highest") before measuring.'
        )


@dataclass(frozen=True)
class RetrievalRanks:
    """Per query, how many wrong candidates score at least as high as the right one (clip_benchmark's
    zero-shot retrieval over all captions, ties counted against the hit).

    ``image_rank[i]``: captions c of other images with cos(x_i, c) >= the best cosine of image i
    with one of its own captions. ``caption_rank[c]``: images j other than c's own with
    cos(x_j, c) >= cos(x_own, c). A query is a hit at k when its rank is below k.
    ``caption_image[c]`` is caption c's image (the first N captions are ``text``, in pair order).
    """

    image_rank: torch.Tensor
    caption_rank: torch.Tensor
    caption_image: torch.Tensor


class _RankCounter:
    """Counts the retrieval ranks from the similarity blocks of the cross-modal pass.

    Thresholds are the float64 cosines of the float32 unit rows. A float32 similarity above its
    threshold + RANK_SLACK is counted, one below threshold − RANK_SLACK is not, and the few in
    between are recomputed in float64 and counted when >= the threshold, so the ranks are those of
    a float64 brute force on the same rows. Per block: two comparisons per direction and their
    counts; every image's own captions are gathered to tell them from the others.
    """

    def __init__(
        self, image: torch.Tensor, captions: torch.Tensor, caption_image: torch.Tensor
    ) -> None:
        import torch

        n, total = int(image.shape[0]), int(captions.shape[0])
        device = image.device
        self.image, self.captions, self.caption_image = image, captions, caption_image
        self.own = dot64(image, captions, caption_image, torch.arange(total, device=device))
        best = torch.full((n,), -torch.inf, dtype=torch.float64, device=device)
        self.best = best.scatter_reduce_(0, caption_image, self.own, "amax")
        self.row_lo, self.row_hi = (
            (self.best - RANK_SLACK).float(),
            (self.best + RANK_SLACK).float(),
        )
        self.col_lo, self.col_hi = (self.own - RANK_SLACK).float(), (self.own + RANK_SLACK).float()
        # Captions ordered by image, and where each image's run starts: a block's own captions.
        self.by_image = torch.argsort(caption_image, stable=True)
        counts = torch.bincount(caption_image, minlength=n)
        self.starts = [0, *torch.cumsum(counts, 0).tolist()]
        self.image_rank = torch.zeros(n, dtype=torch.int64, device=device)
        self.caption_rank = torch.zeros(total, dtype=torch.int64, device=device)
        self.error = torch.zeros((), dtype=torch.float64, device=device)

    def feed(self, sims: torch.Tensor, start: int, ge: torch.Tensor, above: torch.Tensor) -> None:
        """Count the ranks the (block, N + M) similarities of images ``start``.. contribute;
        ``ge`` and ``above`` are bool buffers of the same shape."""
        import torch

        block = int(sims.shape[0])
        own_cols = self.by_image[self.starts[start] : self.starts[start + block]]
        own_rows = self.caption_image[own_cols] - start
        own_values = sims[own_rows, own_cols]
        deviation = (own_values.double() - self.own[own_cols]).abs().max()
        self.error = torch.maximum(self.error, deviation)

        # Image -> text: captions against the image's best own caption (row thresholds). Own
        # captions never lie above the band (none beats the best); those in it are subtracted.
        lo, hi = self.row_lo[start : start + block, None], self.row_hi[start : start + block, None]
        torch.ge(sims, lo, out=ge)
        possible = _count(ge, 1)
        possible.index_add_(0, own_rows, (own_values >= lo[own_rows, 0]).int(), alpha=-1)
        # Only images with another caption at or above the band's lower edge can have a rank.
        rows = torch.nonzero(possible > 0).flatten()
        if rows.numel():
            if 4 * rows.numel() >= block:
                ge_rows, above_rows = ge, torch.gt(sims, hi, out=above)
                rows = torch.arange(block, device=sims.device)
            else:
                ge_rows, above_rows = ge[rows], sims[rows] > hi[rows]
            above_count = _count(above_rows, 1)
            self.image_rank[rows + start] += above_count
            band = torch.nonzero(possible[rows] > above_count).flatten()
            if band.numel():
                r, c = torch.nonzero(ge_rows[band] & ~above_rows[band], as_tuple=True)
                query = rows[band[r]] + start
                other = self.caption_image[c] != query
                query, c = query[other], c[other]
                wins = dot64(self.image, self.captions, query, c) >= self.best[query]
                self.image_rank.index_add_(0, query, wins.long())

        # Text -> image: images against the caption's own image (column thresholds). The own image
        # is always in the band (``error`` is checked to stay below RANK_SLACK / 2).
        lo, hi = self.col_lo[None, :], self.col_hi[None, :]
        torch.ge(sims, lo, out=ge)
        possible = _count(ge, 0)
        possible[own_cols] -= 1
        cols = torch.nonzero(possible > 0).flatten()
        if cols.numel():
            if 4 * cols.numel() >= possible.numel():
                ge_cols, above_cols = ge, torch.gt(sims, hi, out=above)
                cols = torch.arange(possible.numel(), device=sims.device)
            else:
                ge_cols, above_cols = ge[:, cols], sims[:, cols] > hi[:, cols]
            above_count = _count(above_cols, 0)
            self.caption_rank[cols] += above_count
            band = torch.nonzero(possible[cols] > above_count).flatten()
            if band.numel():
                r, k = torch.nonzero(ge_cols[:, band] & ~above_cols[:, band], as_tuple=True)
                image_index, caption_index = r + start, cols[band[k]]
                other = self.caption_image[caption_index] != image_index
                image_index, caption_index = image_index[other], caption_index[other]
                wins = dot64(self.image, self.captions, image_index, caption_index)
                wins_own = wins >= self.own[caption_index]
                self.caption_rank.index_add_(0, caption_index, wins_own.long())

    def result(self) -> RetrievalRanks:
        _check_rounding(self.error)
        return RetrievalRanks(self.image_rank, self.caption_rank, self.caption_image)


def class_ranks(
    image: torch.Tensor,
    classes: torch.Tensor,
    labels: torch.Tensor,
    *,
    block_elements: int | None = None,
) -> torch.Tensor:
    """rank[i] = #{classes c ≠ labels[i] : cos(x_i, w_c) >= cos(x_i, w_labels[i])}: zero-shot
    classification with ties counted against the true class (correct at k when rank < k).

    Same banded float32 / float64 counting as the retrieval ranks; the (block, C) scores are the
    only all-pairs work, N x C.
    """
    import torch

    n, c_count = int(image.shape[0]), int(classes.shape[0])
    device = image.device
    own = dot64(image, classes, torch.arange(n, device=device), labels)
    lo, hi = (own - RANK_SLACK).float(), (own + RANK_SLACK).float()
    ranks = torch.zeros(n, dtype=torch.int64, device=device)
    error = torch.zeros((), dtype=torch.float64, device=device)
    step = block_rows(c_count, device, block_elements)
    for start in range(0, n, step):
        stop = min(n, start + step)
        scores = image[start:stop] @ classes.T
        local = torch.arange(stop - start, device=device)
        own_scores = scores[local, labels[start:stop]]
        error = torch.maximum(error, (own_scores.double() - own[start:stop]).abs().max())
        ge = scores >= lo[start:stop, None]
        above = scores > hi[start:stop, None]
        above_count = above.sum(1)
        ranks[start:stop] += above_count
        # The true class is always in the band (``error`` is checked below).
        rows = torch.nonzero(ge.sum(1) - above_count > 1).flatten()
        if rows.numel():
            r, c = torch.nonzero(ge[rows] & ~above[rows], as_tuple=True)
            query = rows[r] + start
            other = c != labels[query]
            query, c = query[other], c[other]
            wins = dot64(image, classes, query, c) >= own[query]
            ranks.index_add_(0, query, wins.long())
    _check_rounding(error)
    return ranks


@dataclass(frozen=True)
class CrossModalStats:
    """What one pass over all image-text pairs (x_i, y_j), i != j, learns about the negatives.

    Negatives are all i != j, minus pairs whose groups are equal when groups are given. ``auc_numerator``
    is Σ over (positive k, negative (i, j)) of [s_kk > s_ij] + ½[s_kk = s_ij]. Per pair index m:
    ``pos_wins[m]`` is that sum over the negatives for positive m, ``row_wins[m]`` / ``col_wins[m]`` the
    sum over positives for the negatives in row m / column m, ``row_count[m] + col_count[m]`` the
    negatives that involve m, and ``row_col_hist[m]`` the histogram (OVERLAP_BINS) of those negatives.
    ``ranks``: the retrieval ranks over all captions, when asked for.
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
    ranks: RetrievalRanks | None = None


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
    """Reusable block buffers for one pass: (block, N + M) similarities with every caption and two
    rank masks (when ranks are counted), and (block, N) scaled values, bins, wins and a mask."""

    def __init__(self, rows: int, n: int, columns: int, ranks: bool, device: torch.device) -> None:
        import torch

        size = rows * n
        self.n, self.columns = n, columns
        self.sims = torch.empty(rows * columns, device=device)
        self.scaled = torch.empty(size, device=device)
        self.grid_bin = torch.empty(size, dtype=torch.int64, device=device)
        self.overlap_bin = torch.empty(size, dtype=torch.int64, device=device)
        self.wins = torch.empty(size, device=device)
        self.mask = torch.empty(size, dtype=torch.bool, device=device)
        rank_size = rows * columns if ranks else 0
        self.rank_masks = [torch.empty(rank_size, dtype=torch.bool, device=device) for _ in "ab"]

    def views(self, rows: int) -> tuple[torch.Tensor, ...]:
        """(rows, N) views of the per-pair buffers, in the order of the attributes above; the
        similarities are the first N columns of ``all_sims``."""
        size = rows * self.n
        buffers = (self.scaled, self.grid_bin, self.overlap_bin, self.wins, self.mask)
        sims = self.all_sims(rows)[:, : self.n]
        return (sims, *(buffer[:size].view(rows, self.n) for buffer in buffers))

    def all_sims(self, rows: int) -> torch.Tensor:
        """(rows, N + M) similarities with every caption."""
        return self.sims[: rows * self.columns].view(rows, self.columns)

    def masks(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two (rows, N + M) bool buffers for the rank comparisons."""
        first, second = (
            mask[: rows * self.columns].view(rows, self.columns) for mask in self.rank_masks
        )
        return first, second


def cross_modal_pass(
    image: torch.Tensor,
    text: torch.Tensor,
    positives: torch.Tensor,
    groups: torch.Tensor | None,
    *,
    extra_captions: torch.Tensor | None = None,
    extra_caption_image: torch.Tensor | None = None,
    ranks: bool = False,
    block_elements: int | None = None,
    exact_auc: bool | None = None,
) -> CrossModalStats:
    """Histogram and rank every negative image-text cosine against the positive cosines; with
    ``ranks``, count the retrieval ranks over ``text`` and ``extra_captions`` too.

    Every cosine is bucketed once on the GRID_BINS grid. A negative in a grid bin that holds no
    positive is ranked exactly by the grid alone; when ``exact_auc`` (default: N <= EXACT_AUC_MAX_N)
    the few negatives that share a bin with a positive are ranked by binary search among the sorted
    positives, otherwise they count as ties with that bin's positives (a histogram AUC, error below
    half the probability mass of one 3.9e-5-wide bin). ``extra_captions`` (M, d) are further
    captions of the images ``extra_caption_image``: each block multiplies the images with all N + M
    captions at once, and the first N columns feed the statistics above.
    """
    import torch

    n = int(image.shape[0])
    device = image.device
    exact = n <= EXACT_AUC_MAX_N if exact_auc is None else exact_auc
    captions, counter = text, None
    if extra_captions is not None and extra_caption_image is not None and ranks:
        captions = torch.cat([text, extra_captions])
    if ranks:
        own_image = torch.arange(n, device=device)
        if captions is not text:
            assert extra_caption_image is not None
            own_image = torch.cat([own_image, extra_caption_image])
        counter = _RankCounter(image, captions, own_image)
    caption_count = int(captions.shape[0])
    step = block_rows(caption_count, device, block_elements)
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
    work = _Workspace(step, n, caption_count, counter is not None, device)
    captions_t = captions.T
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = stop - start
        sims, scaled, grid_bin, overlap_bin, wins, shared_mask = work.views(block)
        torch.matmul(image[start:stop], captions_t, out=work.all_sims(block))
        if counter is not None:
            counter.feed(work.all_sims(block), start, *work.masks(block))
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
        ranks=None if counter is None else counter.result(),
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
