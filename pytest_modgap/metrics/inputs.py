"""Check and normalise the embeddings handed to the metric engine.

Arrays or tensors of any float dtype become unit-norm float32 torch tensors on the inputs' device; every
problem (shape, length, NaN / inf, zero rows) is a ModgapInputError that names the argument and rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_modgap.errors import ModgapInputError

if TYPE_CHECKING:
    import torch

_MAX_ROWS_LISTED = 5

EmbeddingSet = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
"""(image, text, text2, groups) rows of one sample, ready for ``measure_embeddings``."""


@dataclass(frozen=True)
class PairedEmbeddings:
    """Unit-normalised float32 rows: ``image[i]`` matches ``text[i]`` (and ``text2[i]``).

    ``groups`` holds int64 labels relabelled to 0..G-1 (pairs in one group are not negatives).
    ``extra_captions[m]`` is a further caption of image ``extra_caption_image[m]``; ``retrieval``
    says whether the retrieval ranks are counted. ``classes`` holds one unit row per class (the
    zero-shot classifier) and ``labels`` each pair's row in it (the groups as given).
    """

    image: torch.Tensor
    text: torch.Tensor
    text2: torch.Tensor | None
    groups: torch.Tensor | None
    extra_captions: torch.Tensor | None = None
    extra_caption_image: torch.Tensor | None = None
    retrieval: bool = True
    classes: torch.Tensor | None = None
    labels: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return int(self.image.shape[0])

    @property
    def device(self) -> torch.device:
        return self.image.device


def _rows(indices: Any) -> str:
    rows = [int(i) for i in indices]
    listed = ", ".join(str(i) for i in rows[:_MAX_ROWS_LISTED])
    more = f" and {len(rows) - _MAX_ROWS_LISTED} more" if len(rows) > _MAX_ROWS_LISTED else ""
    return f"row{'s' if len(rows) > 1 else ''} {listed}{more}"


def _as_tensor(name: str, value: Any, device: torch.device | None) -> torch.Tensor:
    import torch

    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ModgapInputError(
                f"{name}: cannot be read as an array ({exc}); pass a numpy array or torch tensor "
                f"of shape (N, d)."
            ) from exc
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
        ):
            raise ModgapInputError(
                f"{name}: has dtype {array.dtype}; expected a numeric array of shape (N, d)."
            )
        if array.dtype.itemsize > 8 and np.issubdtype(array.dtype, np.floating):
            # torch has no long double; a value past float64's range becomes inf and is refused.
            array = array.astype(np.float64)
        elif not array.dtype.isnative:
            # Big-endian arrays (from another machine's .npz, say) torch refuses to wrap.
            array = array.astype(array.dtype.newbyteorder("="))
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device is not None:
        tensor = tensor.to(device)
    if tensor.ndim != 2:
        raise ModgapInputError(
            f"{name}: has shape {tuple(tensor.shape)}; expected a 2-D array of shape (N, d), one "
            f"embedding per row (reshape a single vector with .reshape(1, -1), or stack the rows)."
        )
    if tensor.is_complex():
        raise ModgapInputError(f"{name}: is complex; expected real-valued embeddings.")
    # float64 inputs are normalised in float64 (their directions may need its precision).
    work = tensor.to(torch.float64) if tensor.dtype == torch.float64 else tensor.float()
    bad = ~torch.isfinite(work).all(dim=1)
    if bool(bad.any()):
        raise ModgapInputError(
            f"{name}: {_rows(torch.nonzero(bad).flatten().tolist())} contain NaN or inf; every "
            f"embedding must be finite. Check the encoder's output for those pairs (an overflow "
            f"in float16 / bfloat16 is a common cause: try float32)."
        )
    return _unit_rows(name, work)


def _unit_rows(name: str, work: torch.Tensor) -> torch.Tensor:
    """Finite rows divided by their L2 norms, as float32; a ModgapInputError for zero rows.

    Each row is first divided by its largest absolute value, so that its norm is taken over values
    in [-1, 1]: squaring float32 values near 1e19 would overflow to inf (every cosine 0) and values
    near 1e-20 would underflow to 0 (the row refused as zero). Scaling does not change a row's
    direction, and only a row whose largest value is 0 is truly zero. It costs O(N d), nothing
    next to the all-pairs pass.
    """
    import torch

    scale = work.abs().amax(dim=1, keepdim=True)
    zero = scale[:, 0] == 0
    if bool(zero.any()):
        raise ModgapInputError(
            f"{name}: {_rows(torch.nonzero(zero).flatten().tolist())} are all zeros; a zero "
            f"vector has no direction, so no cosine can be computed. Drop those pairs or fix "
            f"the encoder."
        )
    scaled = work / scale
    unit: torch.Tensor = (scaled / torch.linalg.vector_norm(scaled, dim=1, keepdim=True)).float()
    return unit


def _as_groups(value: Any, n: int, device: torch.device) -> torch.Tensor:
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != 1 or array.shape[0] != n:
        raise ModgapInputError(
            f"groups: has shape {array.shape}; expected one integer label per pair, shape ({n},)."
        )
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)):
            if np.all(array == np.round(array)):
                array = array.astype(np.int64)
        if not np.issubdtype(array.dtype, np.integer):
            raise ModgapInputError(
                f"groups: has dtype {array.dtype}; expected integer class labels, one per pair "
                f"(map string labels to ints first, e.g. with np.unique(labels, "
                f"return_inverse=True))."
            )
    _, relabelled = np.unique(array, return_inverse=True)
    return torch.from_numpy(relabelled.astype(np.int64)).to(device)


def _as_caption_images(value: Any, m: int, n: int, device: torch.device) -> torch.Tensor:
    """``extra_caption_image`` as int64 image indices in [0, n), one per extra caption."""
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.shape != (m,) or not np.issubdtype(array.dtype, np.integer):
        raise ModgapInputError(
            f"extra_caption_image: has shape {array.shape} and dtype {array.dtype}; expected "
            f"({m},) integers, the image (row of image) each of the {m} extra captions describes."
        )
    if m and (array.min() < 0 or array.max() >= n):
        raise ModgapInputError(
            f"extra_caption_image: holds {array.min()}..{array.max()}, but an image index must "
            f"be a row of image, 0..{n - 1}."
        )
    return torch.from_numpy(array.astype(np.int64)).to(device)


def _extra_captions(
    extra_captions: Any, extra_caption_image: Any, x: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if (extra_captions is None) != (extra_caption_image is None):
        raise ModgapInputError(
            "extra_captions and extra_caption_image: pass both (the captions and, for each, the "
            "row of image it describes) or neither."
        )
    if extra_captions is None:
        return None, None
    captions = _as_tensor("extra_captions", extra_captions, x.device)
    if captions.shape[1] != x.shape[1]:
        raise ModgapInputError(
            f"extra_captions: have dimension {captions.shape[1]}, the images {x.shape[1]}; all "
            f"captions must come from the same model as the images."
        )
    m = int(captions.shape[0])
    return captions, _as_caption_images(extra_caption_image, m, int(x.shape[0]), x.device)


def _classifier(
    class_embeddings: Any, groups: Any, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The zero-shot classifier (OpenAI protocol: each template embedding normalised, averaged per
    class, the mean renormalised) and the pairs' class indices (``groups``, as given)."""
    import torch

    if groups is None:
        raise ModgapInputError(
            "class_embeddings: zero-shot classification needs each pair's class: pass groups, "
            "the row of class_embeddings that is each pair's class."
        )
    raw = (
        class_embeddings.detach()
        if isinstance(class_embeddings, torch.Tensor)
        else np.asarray(class_embeddings)
    )
    shape = tuple(raw.shape)
    if len(shape) not in (2, 3) or shape[-1] != x.shape[1] or shape[0] < 2:
        raise ModgapInputError(
            f"class_embeddings: has shape {shape}; expected (C, d) or (C, T, d): one embedding "
            f"per class (or per class and prompt template) with d = {x.shape[1]}, like the "
            f"images, and C >= 2 classes."
        )
    templates = shape[1] if len(shape) == 3 else 1
    flat = raw.reshape(shape[0] * templates, shape[-1])
    rows = _as_tensor("class_embeddings", flat, x.device)
    mean = rows.double().view(shape[0], templates, shape[-1]).mean(1)
    classes = _unit_rows("class_embeddings (template mean)", mean)
    labels = groups.detach().cpu().numpy() if isinstance(groups, torch.Tensor) else groups
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != x.shape[0]:
        raise ModgapInputError(
            f"groups: has shape {array.shape}; expected one class index per pair, "
            f"shape ({x.shape[0]},)."
        )
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() >= shape[0]:
        raise ModgapInputError(
            f"groups: with class_embeddings each group is a class index, 0..{shape[0] - 1} (the "
            f"row of class_embeddings); got dtype {array.dtype}, values "
            f"{array.min()}..{array.max()}."
        )
    return classes, torch.from_numpy(array.astype(np.int64)).to(x.device)


def prepare_embeddings(
    image: Any,
    text: Any,
    *,
    text2: Any = None,
    groups: Any = None,
    extra_captions: Any = None,
    extra_caption_image: Any = None,
    retrieval: bool = True,
    class_embeddings: Any = None,
) -> PairedEmbeddings:
    """Validate, move to one device and L2-normalise the rows of ``image``, ``text``, ``text2``,
    ``extra_captions`` and ``class_embeddings`` (see ``measure_embeddings``).

    Tensors keep their device (the others follow ``image``); numpy arrays go to the CPU.
    """
    import torch

    device = image.device if isinstance(image, torch.Tensor) else None
    x = _as_tensor("image", image, device)
    y = _as_tensor("text", text, x.device)
    if y.shape[0] != x.shape[0]:
        raise ModgapInputError(
            f"image and text: have {x.shape[0]} and {y.shape[0]} rows; row i of each must be "
            f"one matched pair, so both need the same number of rows."
        )
    if y.shape[1] != x.shape[1]:
        raise ModgapInputError(
            f"image and text: have dimensions {x.shape[1]} and {y.shape[1]}; both must live in "
            f"one embedding space of the same dimension (check the projection heads)."
        )
    n = int(x.shape[0])
    if n < 2:
        raise ModgapInputError(
            f"image and text: have {n} pair(s); the metrics compare pairs with each other and "
            f"need at least 2 rows."
        )
    z = None
    if text2 is not None:
        z = _as_tensor("text2", text2, x.device)
        if z.shape != y.shape:
            raise ModgapInputError(
                f"text2: has shape {tuple(z.shape)}; expected {tuple(y.shape)}, one second "
                f"caption embedding per pair, like text."
            )
    g = None if groups is None else _as_groups(groups, n, x.device)
    extra, extra_image = _extra_captions(extra_captions, extra_caption_image, x)
    classes, labels = (None, None)
    if class_embeddings is not None:
        classes, labels = _classifier(class_embeddings, groups, x)
    return PairedEmbeddings(
        image=x,
        text=y,
        text2=z,
        groups=g,
        extra_captions=extra,
        extra_caption_image=extra_image,
        retrieval=retrieval,
        classes=classes,
        labels=labels,
    )
