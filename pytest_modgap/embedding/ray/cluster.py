"""Connecting to a Ray cluster: ``local``, ``auto`` or an address, quietly and with a bounded wait.

Ray is the optional extra ``[ray]``; it is imported here, when a Ray address is given, never before.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from types import ModuleType
from typing import Any

from pytest_modgap.embedding.ray.logs import (
    quiet_ray_data_logs,
    quiet_ray_start,
    quiet_ray_warnings,
    ray_logging_level,
)
from pytest_modgap.embedding.ray.port_probe import (
    CLIENT_PROBE_PATH,
    GCS_PROBE_PATH,
    Answer,
    NotGrpc,
    call_port,
)
from pytest_modgap.errors import ModgapInputError

RAY_EXTRA = "pip install 'pytest-modgap[ray]'"
CONNECT_TIMEOUT_S = 10.0
"""How long the address's port may take to answer before the run stops (well inside 30 s)."""

LOOPBACK_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""Set before ``ray`` is imported, a cluster started on this machine listens on and advertises
127.0.0.1 (Ray's single-machine mode, its default on macOS and Windows), and Ray sends no usage
statistics: a ``local`` run sends nothing past loopback. Values set by the user are kept."""

_CLOSED_LOOPBACK_PORT = "http://127.0.0.1:9"
NO_CLOUD_PROBES_ENV = {
    **dict.fromkeys(
        ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"), _CLOSED_LOOPBACK_PORT
    ),
    **dict.fromkeys(("no_proxy", "NO_PROXY"), "localhost,127.0.0.1,::1"),
}
"""For tests and benchmarks, not for users: Ray's usage-statistics module asks the cloud metadata
addresses (169.254.169.254, metadata.google.internal) which cloud it runs on even with statistics
off (Ray 2.60, ``usage_lib.get_cluster_config_to_report``). With these proxies every HTTP request
that is not for loopback goes to a closed port on 127.0.0.1 and fails there, DNS included."""

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
    address = address.strip()
    if address == LOCAL:
        keep_local_cluster_on_loopback()
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if not address:
        raise _address_error(address, "it is empty")
    quiet: dict[str, Any] = {"logging_level": ray_logging_level(), "log_to_driver": False}
    started = time.monotonic()
    try:
        with quiet_ray_start():
            _init(ray, address, quiet)
    except ModgapInputError:
        raise
    except Exception as exc:  # ConnectionError, RuntimeError, grpc errors: each means no cluster
        waited = time.monotonic() - started
        raise _address_error(
            address, f"connecting failed after {waited:.1f} s ({type(exc).__name__}: {exc})"
        ) from exc
    quiet_ray_data()
    return ray


def _init(ray: ModuleType, address: str, quiet: dict[str, Any]) -> None:
    """``ray.init`` for ``address``, after ``check_port`` for a HOST:PORT form."""
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
        check_port(address)
        if address.startswith(_CLIENT_PREFIX):
            ray.init(address=address, logging_level=quiet["logging_level"])
        else:
            ray.init(address=address, **quiet)


def check_address_form(address: str) -> None:
    """A ModgapInputError unless ``address`` has a form ``connect`` takes (``local``, ``auto``,
    ``ray://HOST:PORT``, ``HOST:PORT``). It imports and connects to nothing, so the pytest plugin
    refuses a mistyped address before the first test instead of failing every test."""
    address = address.strip()
    if not address:
        raise _address_error(address, "it is empty")
    if address not in (LOCAL, AUTO):
        _host_and_port(address)


def _host_and_port(address: str) -> tuple[str, int]:
    rest = address[len(_CLIENT_PREFIX) :] if address.startswith(_CLIENT_PREFIX) else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _address_error(address, "it is not 'local', 'auto', 'ray://HOST:PORT' or 'HOST:PORT'")
    return host.strip("[]"), int(port)


def check_port(address: str) -> None:
    """Check within ``CONNECT_TIMEOUT_S`` that ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``)
    names the kind of Ray port its form asks for, before ``ray.init`` waits on it: gRPC calls in
    plain HTTP/2 (``port_probe``) tell a GCS from a Ray Client server from other gRPC servers. A
    closed port, a silent listener, another protocol (the dashboard's HTTP port), a port that is no
    GCS given as ``HOST:PORT`` (``ray.init`` retried for 21 s on a Ray Client port) and a port that
    is no Ray Client server given as ``ray://`` (30 s on a GCS port) are each a ModgapInputError
    naming the address and the likely fix. With ``RAY_USE_TLS`` set the handshake is TLS's, so only
    the TCP connection is checked."""
    host, port = _host_and_port(address)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    try:
        if _ray_uses_tls():
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
            return
        token = _ray_token_metadata()
        gcs = call_port(host, port, GCS_PROBE_PATH, CONNECT_TIMEOUT_S, metadata=token)
        if gcs is not Answer.UNIMPLEMENTED:
            client_server = None
        else:
            left = max(deadline - time.monotonic(), 0.1)
            client_server = call_port(host, port, CLIENT_PROBE_PATH, left, metadata=token)
    except TimeoutError as exc:
        raise _address_error(
            address,
            f"port {port} of {host} took the connection but gave no gRPC answer within "
            f"{CONNECT_TIMEOUT_S:g} s, so it is no Ray port. {_PORT_HINT}",
        ) from exc
    except NotGrpc as exc:
        sent = exc.first_bytes
        answer = f"its first bytes were {sent!r}" if sent else "it closed the connection"
        raise _address_error(
            address,
            f"port {port} of {host} does not speak gRPC as Ray's ports do ({answer}). {_PORT_HINT}",
        ) from exc
    except OSError as exc:
        raise _address_error(
            address, f"port {port} of {host} cannot be reached ({exc.strerror or exc})"
        ) from exc
    _check_kind(address, host, port, gcs, client_server)


def _check_kind(
    address: str, host: str, port: int, gcs: Answer, client_server: Answer | None
) -> None:
    """A ModgapInputError when the port is not the kind the address's form asks for."""
    is_client_server = client_server not in (None, Answer.UNIMPLEMENTED)
    if address.startswith(_CLIENT_PREFIX):
        if gcs is Answer.SERVED:
            raise _address_error(
                address,
                f"port {port} of {host} is a GCS port, which the Ray Client cannot join: give it "
                f"as '{host}:{port}' (without ray://) on a node of the cluster, or give the "
                f"cluster's Ray Client port (10001 by default) as 'ray://{host}:PORT'",
            )
        if client_server is Answer.UNIMPLEMENTED:
            raise _address_error(
                address,
                f"port {port} of {host} answers gRPC but is neither a Ray Client port nor a GCS "
                f"port (a raylet's?). {_PORT_HINT}",
            )
    elif is_client_server:
        raise _address_error(
            address,
            f"port {port} of {host} is a Ray Client port, which ray.init joins only as "
            f"'ray://{host}:{port}' (without ray:// it retries for 20 s and more, then fails): "
            f"give 'ray://{host}:{port}'",
        )
    elif client_server is Answer.UNIMPLEMENTED:
        raise _address_error(
            address,
            f"port {port} of {host} answers gRPC but is neither a GCS port nor a Ray Client port "
            f"(a raylet's?). {_PORT_HINT}",
        )


def _ray_token_metadata() -> dict[str, str]:
    """Ray's token-authentication header when this machine has a token (Ray 2.52 and later enable
    token authentication by default): a GCS that requires it answers the probe only with it."""
    try:
        import ray._raylet

        loader = ray._raylet.AuthenticationTokenLoader.instance()  # type: ignore[attr-defined]
        if not loader.has_token(ignore_auth_mode=True):
            return {}
        return {str(name): str(value) for name, value in loader.get_token_for_http_header().items()}
    except Exception:  # a Ray without token authentication: the probe goes without a token
        return {}


_PORT_HINT = (
    "A cluster's Ray Client port (10001 by default) is given as 'ray://HOST:PORT', its GCS port "
    "(6379 by default) as 'HOST:PORT'; the dashboard's port (8265) is neither"
)


def _ray_uses_tls() -> bool:
    return os.environ.get("RAY_USE_TLS", "0").strip().lower() in ("1", "true")


def keep_local_cluster_on_loopback(*, block_cloud_probes: bool = False) -> None:
    """Apply ``LOOPBACK_ONLY_ENV`` (each variable only where unset), and ``NO_CLOUD_PROBES_ENV``
    when asked (tests, benchmarks); effective for a cluster started after it, in a process that had
    not imported ``ray`` yet."""
    extra = NO_CLOUD_PROBES_ENV if block_cloud_probes else {}
    for name, value in {**LOOPBACK_ONLY_ENV, **extra}.items():
        os.environ.setdefault(name, value)


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
    """No progress bars, per-job log lines or error lines from Ray Data: pytest-modgap reports
    progress and errors (``logs``: unless Ray's logs are wanted)."""
    import ray.data

    with quiet_ray_warnings():  # Ray Data's context warns of its own renamed settings
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    quiet_ray_data_logs()
