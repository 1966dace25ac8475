"""Where a transformers model comes from: a local directory or the local Hugging Face hub cache.

Resolves a spec to its config.json without loading weights, and fingerprints the weights for the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_modgap.errors import EncoderError, option_name
from pytest_modgap.models.content_hash import file_digest
from pytest_modgap.models.hub_probe import probe_hub

# A Hugging Face repo id: "name" or "namespace/name".
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSource:
    """Where a transformers model comes from, resolved before any weights are loaded.

    ``directory`` holds config.json: the user's local directory, or for a hub id the snapshot of the
    local Hugging Face cache. Hub models are loaded by ``repo_id`` at the resolved ``commit``.
    """

    spec: str
    directory: Path
    config: dict[str, Any]
    repo_id: str | None = None
    commit: str | None = None

    @property
    def load_path(self) -> str:
        """What ``from_pretrained`` receives: the hub id, or the local directory."""
        return self.repo_id if self.repo_id is not None else str(self.directory)

    @property
    def revision(self) -> str | None:
        """The revision ``from_pretrained`` receives: the resolved commit for hub models."""
        return self.commit

    @property
    def remote_code_class(self) -> str | None:
        """The ``auto_map`` entry for AutoModel when the model ships its own code, else None."""
        auto_map = self.config.get("auto_map")
        if isinstance(auto_map, dict):
            entry = auto_map.get("AutoModel")
            if isinstance(entry, str):
                return entry
            if isinstance(entry, list) and entry and isinstance(entry[0], str):
                return entry[0]
        return None

    def fingerprint(self) -> str:
        """Identifies these exact weights: the commit of a hub snapshot, or a hash of a directory.

        A hub commit pins every file of the snapshot (its files are links to blobs named by their
        content hash), so nothing is read. A local directory is hashed whole, file by file (every
        non-hidden file, so config and tokenizer changes count too): a same-size rewrite with the
        old mtime kept (``cp -p``, ``rsync -t``, tar) changes the fingerprint. Each file is read
        once per process (``content_hash.file_digest``): under a second per GB on two cores.
        """
        if self.repo_id is not None:
            return f"hub:{self.repo_id}@{self.commit}"
        return f"dir-sha256:{_directory_digest(self.spec, self.directory)}"


def resolve_model_source(spec: str) -> ModelSource:
    """Find the config.json of a local directory or a (possibly pinned) hub id, without loading.

    An existing path wins over the ``@revision`` reading, so a directory named ``ckpt@v2`` works;
    a revision after an existing directory is refused, since a directory is one version already.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return _local_source(spec, path)
    name, revision = spec, None
    if "@" in spec:
        name, revision = spec.rsplit("@", 1)
        if Path(name).expanduser().exists():
            raise EncoderError(
                f"Model spec {spec!r}: {name!r} is a local directory, and a revision (@{revision}) "
                f"only pins a Hugging Face hub id. Drop '@{revision}', or check out that revision "
                f"into its own directory and point {option_name('--modgap-model')} at it."
            )
        if not revision:
            raise EncoderError(
                f"Model spec {spec!r} ends in '@' with no revision. Write 'org/name@revision' "
                f"(a branch, tag or commit), or leave the '@' out for the default branch."
            )
    if not _HUB_ID.match(name) or name.startswith((".", "~")):
        raise EncoderError(
            f"Model spec {spec!r} is neither an existing directory nor a Hugging Face id "
            f"('org/name'). Check the path (relative paths start from {os.getcwd()!r}), or pass "
            f"'embeddings:file.npz' or 'module:factory'."
        )
    return _hub_source(spec, name, revision)


def _local_source(spec: str, path: Path) -> ModelSource:
    """A local model directory: it must hold a config.json."""
    config_path = path / "config.json"
    if not path.is_dir() or not config_path.is_file():
        what = "is a file, not a directory" if not path.is_dir() else "has no config.json"
        raise EncoderError(
            f"Model spec {spec!r} {what}. Point {option_name('--modgap-model')} at a directory "
            f"written by save_pretrained() (config.json, weights, processor files), or use "
            f"'embeddings:file.npz' for precomputed vectors."
        )
    return ModelSource(spec=spec, directory=path.resolve(), config=_read_config(spec, config_path))


def _hub_source(spec: str, repo_id: str, revision: str | None) -> ModelSource:
    """A hub id: its config.json from the local cache, or from the hub when that is allowed."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        config_path = Path(cached)
    elif _hub_offline(constants.HF_HUB_OFFLINE):
        raise _not_found(spec, repo_id, revision, "HF_HUB_OFFLINE is set, so the hub was not asked")
    else:
        try:
            probe_hub(repo_id, revision, "config.json")  # fails fast without a network
            config_path = Path(hf_hub_download(repo_id, "config.json", revision=revision))
        except Exception as exc:  # any hub failure (network, 404, auth) means "not available"
            raise _not_found(spec, repo_id, revision, f"the hub answered: {exc}") from exc
    snapshot = config_path.parent
    return ModelSource(
        spec=spec,
        directory=snapshot,
        config=_read_config(spec, config_path),
        repo_id=repo_id,
        commit=snapshot.name,
    )


def hub_file(spec: str, filename: str) -> tuple[Path, str, str] | None:
    """The snapshot directory, repo id and commit of a hub id (``org/name[@revision]``) whose
    snapshot holds ``filename`` at its top level; None when ``spec`` is no hub id or the file is
    not there. The local cache is read first; the hub is asked for that one file only when it may
    be (HF_HUB_OFFLINE unset). Other files of the snapshot may still be missing: see
    ``hub_snapshot``.
    """
    name, pinned = spec.rsplit("@", 1) if "@" in spec else (spec, None)
    if not _HUB_ID.match(name) or name.startswith((".", "~")) or pinned == "":
        return None
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(name, filename, revision=pinned)
    if isinstance(cached, str):
        path = Path(cached)
    elif _hub_offline(constants.HF_HUB_OFFLINE):
        return None
    else:
        try:
            probe_hub(name, pinned, filename)  # fails fast without a network
            path = Path(hf_hub_download(name, filename, revision=pinned))
        except Exception:  # not on the hub, no network, no access: the caller's other paths explain
            return None
    return path.parent, name, path.parent.name


def hub_snapshot(repo_id: str, commit: str) -> Path:
    """The local snapshot of ``repo_id`` at ``commit`` with every file of the repo, downloading the
    missing ones when the hub may be asked, for libraries that load a whole folder
    (sentence-transformers); offline, the cached snapshot as it is."""
    from huggingface_hub import constants, snapshot_download

    offline = _hub_offline(constants.HF_HUB_OFFLINE)
    return Path(snapshot_download(repo_id, revision=commit, local_files_only=offline))


def _hub_offline(constant: bool) -> bool:
    """Offline when huggingface_hub says so, or when the variables were set after its import."""
    truthy = {"1", "true", "yes", "on"}
    env = (os.environ.get(name, "").lower() for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return constant or any(value in truthy for value in env)


def _not_found(spec: str, repo_id: str, revision: str | None, why: str) -> EncoderError:
    """The error for a hub id that is neither cached nor downloadable."""
    from huggingface_hub import constants

    pinned = f" at revision {revision!r}" if revision else ""
    return EncoderError(
        f"Model spec {spec!r} is not a local directory, and the Hugging Face id {repo_id!r}"
        f"{pinned} is not in the local hub cache ({constants.HF_HUB_CACHE}); {why}. Tests run "
        f"offline: give a local model directory as the model spec, or download the model "
        f"beforehand on a machine with network (hf download {repo_id}) and run with "
        f"HF_HUB_OFFLINE=1."
    )


def _read_config(spec: str, config_path: Path) -> dict[str, Any]:
    """Parse config.json, turning a malformed file into an EncoderError."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderError(
            f"Model spec {spec!r}: {config_path} cannot be read as JSON ({exc}). Re-save the "
            f"model with save_pretrained() or re-download it."
        ) from exc
    if not isinstance(config, dict):
        raise EncoderError(
            f"Model spec {spec!r}: {config_path} does not hold a JSON object. Re-save the model "
            f"with save_pretrained() or re-download it."
        )
    return config


def _directory_digest(spec: str, directory: Path) -> str:
    """sha256 over the name and whole-content hash of every non-hidden file under ``directory``."""
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )
    for path in files:
        try:
            content = file_digest(path)
        except OSError as exc:
            raise EncoderError(
                f"Model spec {spec!r}: cannot read {path} to fingerprint the model for the "
                f"embedding cache ({exc.strerror or exc}). Make the file readable, or move it out "
                f"of the model directory."
            ) from exc
        digest.update(f"{path.relative_to(directory).as_posix()}\0{content}\0".encode())
    return digest.hexdigest()
