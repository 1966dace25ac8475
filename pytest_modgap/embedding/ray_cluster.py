"""Connecting to a Ray cluster: ``local``, ``auto`` or an address, quietly and with a bounded wait.

Ray is the optional extra ``[ray]``; it is imported here, when a Ray address is given, never before.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from types import ModuleType
from typing import Any

from pytest_modgap.errors import ModgapInputError

RAY_EXTRA = "pip install 'pytest-modgap[ray]'"
CONNECT_TIMEOUT_S = 10.0
"""How long the address's port may take to answer before the run stops (well inside 30 s)."""

LOCAL = "local"
AUTO = "auto"
_CLIENT_PREFIX = "ray://"
_OPTIONS = (
    "ray_address= of measure(), --modgap-ray-address (ini modgap_ray_address) or --ray-address"
)


def import_ray() -> ModuleType:
    """``ray`` with Ray Data, or a ModgapInputError naming the ``[ray]`` extra."""
    try:
        import ray
        import ray.data  # noqa: F401 (the job runs on Ray Data, which ray alone does not install)
    except ImportError as exc:
        raise ModgapInputError(
            f"A Ray address was given ({_OPTIONS}), but Ray Data is not installed ({exc}). "
            f"Install the [ray] extra on the machine that runs pytest-modgap and on every node "
            f"of the cluster: {RAY_EXTRA}. Or leave the Ray address unset to embed on this "
            f"machine."
        ) from exc
    return ray


def connect(address: str) -> ModuleType:
    """Connect this process to the Ray cluster at ``address`` and return ``ray``.

    ``local`` starts a cluster on this machine (its workers import what this process imports);
    ``auto`` joins the cluster that ``ray start`` runs on this machine; ``ray://host:port`` joins
    through the Ray Client, ``host:port`` a cluster's GCS. A process already connected (it called
    ``ray.init`` itself) is used as it is. An address whose port does not answer within
    ``CONNECT_TIMEOUT_S`` is a ModgapInputError naming it.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address.strip()
    if not address:
        raise _address_error(address, "it is empty")
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    started = time.monotonic()
    try:
        if address == LOCAL:
            ray.init(
                address=LOCAL,
                include_dashboard=False,
                runtime_env={"env_vars": {"PYTHONPATH": driver_path()}},
                **quiet,
            )
        elif address == AUTO:
            ray.init(address=AUTO, **quiet)
        else:
            host, port = _host_and_port(address)
            _check_reachable(address, host, port)
            if address.startswith(_CLIENT_PREFIX):
                ray.init(address=address, logging_level=logging.WARNING)
            else:
                ray.init(address=address, **quiet)
    except ModgapInputError:
        raise
    except Exception as exc:  # ConnectionError, RuntimeError, grpc errors: each means no cluster
        waited = time.monotonic() - started
        raise _address_error(
            address, f"connecting failed after {waited:.1f} s ({type(exc).__name__}: {exc})"
        ) from exc
    quiet_ray_data()
    return ray


def _host_and_port(address: str) -> tuple[str, int]:
    rest = address[len(_CLIENT_PREFIX) :] if address.startswith(_CLIENT_PREFIX) else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _address_error(address, "it is not 'local', 'auto', 'ray://HOST:PORT' or 'HOST:PORT'")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, host: str, port: int) -> None:
    """Open and close a TCP connection to the address, or fail within ``CONNECT_TIMEOUT_S``."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise _address_error(
            address, f"port {port} of {host} cannot be reached ({reason})"
        ) from exc


def _address_error(address: str, problem: str) -> ModgapInputError:
    return ModgapInputError(
        f"Ray address {address!r} ({_OPTIONS}): {problem}. Give 'local' to start a cluster on "
        f"this machine, 'auto' to join the one 'ray start --head' runs here, or "
        f"'ray://HEAD:10001' for a remote cluster's Ray Client port (README, 'Past one machine')."
    )


def driver_path() -> str:
    """This process's import path, so that a local cluster's workers import the same modules
    (``module:factory`` specs, the project under test)."""
    entries = [entry or os.getcwd() for entry in sys.path]
    return os.pathsep.join(dict.fromkeys(entry for entry in entries if os.path.isdir(entry)))


def quiet_ray_data() -> None:
    """No progress bars or per-job log lines from Ray Data: pytest-modgap reports progress."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
