"""The Ray path: a Ray Data job on a local 2-CPU cluster gives the local path's numbers, shares its
cache, survives a killed replica, writes sharded embeddings, and fails clearly."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap import load_model, measure
from pytest_modgap.cli import main
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.embedding.ray.plan import RayPlan
from pytest_modgap.errors import DatasetError, EncoderError, ModgapInputError
from pytest_modgap.metrics.report import Report
from pytest_modgap.models.loader import load_encoder
from pytest_modgap.models.precomputed import PrecomputedEmbeddings
from tests.data.formats import make_pairs, write_jsonl, write_parquet, write_shards
from tests.embedding import ray_models

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

RAY_LINES = (
    "Token authentication is enabled",
    "constructor arguments in the object store",
    "DeprecationWarning",
    "abbreviated stack trace",
)
"""Lines Ray 2.60 printed on runs that went well, and before a worker's error (which
pytest-modgap gives as its own one-paragraph error); shown only with MODGAP_RAY_LOGS=1."""

TOLERANCE = 1e-6


def test_the_command_starts_a_local_cluster_and_gives_the_local_report(tmp_path: Path) -> None:
    """``modgap measure --ray-address local`` in a process of its own (before this module's
    cluster exists): the real ``local`` address, its workers' import path, the printed report."""
    import json
    import subprocess

    common = ["--samples", "60", "--no-cache", "--n-boot", "100"]
    local_json, ray_json = tmp_path / "local.json", tmp_path / "ray.json"
    assert main(["measure", *common, "--device", "cpu", "--json", str(local_json)]) == 0
    command = [sys.executable, "-m", "pytest_modgap.cli", "measure", *common]
    done = subprocess.run(
        [*command, "--ray-address", "local", "--json", str(ray_json)],
        capture_output=True,
        text=True,
        timeout=300,
        # DeprecationWarnings shown, as pytest shows them in its summary.
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "default::DeprecationWarning"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on the Ray cluster local" in done.stdout
    assert "Traceback" not in done.stderr
    # Ray's own lines on a run that went well read as failures (issue 20 item 22).
    for ray_line in RAY_LINES:
        assert ray_line not in done.stderr, done.stderr[-3000:]
    local = Report.from_dict(json.loads(local_json.read_text()))
    on_ray = Report.from_dict(json.loads(ray_json.read_text()))
    assert_same_report(on_ray, local)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray cluster with 2 CPUs for this module; its workers import what pytest imports and
    see ``MODGAP_RAY_TEST_DIR`` (a folder the tests arm ``ray_models.dies_once`` in)."""
    from pytest_modgap.embedding.ray.cluster import driver_path, quiet_ray_data
    from pytest_modgap.embedding.ray.logs import quiet_ray_start, ray_logging_level

    folder = tmp_path_factory.mktemp("ray")
    env = {"PYTHONPATH": driver_path(), "MODGAP_RAY_TEST_DIR": str(folder)}
    env.update(dict.fromkeys(("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"), "1"))
    with quiet_ray_start():  # as connect() starts a cluster
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=ray_logging_level(),
            object_store_memory=200 * 2**20,
            runtime_env={"env_vars": env},
        )
    quiet_ray_data()
    yield folder
    ray.shutdown()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same 40 pairs (two captions each, labels) as a JSONL manifest of image files, WebDataset
    shards and Parquet files."""
    root = tmp_path_factory.mktemp("data")
    pairs = make_pairs(40)
    return {
        "jsonl": str(write_jsonl(root / "jsonl", pairs)),
        "wds": f"wds:{write_shards(root / 'wds', pairs, shards=3)}",
        "parquet": f"parquet:{write_parquet(root / 'parquet', pairs)}",
    }


def assert_same_report(ray_report: Report, local: Report) -> None:
    """Every metric and every interval bound of the two reports within ``TOLERANCE``."""
    assert set(ray_report) == set(local)
    for name in local:
        assert _close(ray_report[name], local[name]), (name, ray_report[name], local[name])
    assert set(ray_report.ci) == set(local.ci)
    for name, (low, high) in local.ci.items():
        got = ray_report.ci[name]
        assert _close(got[0], low) and _close(got[1], high), (name, got, (low, high))


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE


@pytest.mark.parametrize("form", ["jsonl", "wds", "parquet"])
def test_ray_path_equals_the_local_path_on_every_metric(
    cluster: Path, clip_dir: Path, datasets: dict[str, str], form: str, tmp_path: Path
) -> None:
    spec = datasets[form]
    local = measure(str(clip_dir), spec, samples=32, device="cpu", use_cache=False, n_boot=200)
    on_ray = measure(
        str(clip_dir), spec, samples=32, use_cache=False, n_boot=200, ray_address="local"
    )
    assert_same_report(on_ray, local)
    assert on_ray.metadata["ray_address"] == "local"
    assert (on_ray.metadata["device"], on_ray.metadata["dtype"]) == ("cpu", "float32")


def test_class_prompts_and_slices_on_ray_equal_the_local_ones(
    cluster: Path, clip_dir: Path, tmp_path: Path
) -> None:
    """Labels that are class names: zero-shot prompts are embedded with the pairs (texts that
    belong to no pair) and every class is a slice with its own report."""
    import json

    manifest = write_jsonl(tmp_path, make_pairs(100, labels=False))
    names = ["circle", "square", "star", "triangle", "heart"]
    records = [json.loads(line) for line in manifest.read_text("utf-8").splitlines()]
    lines = [json.dumps({**r, "label": names[i % 5]}) for i, r in enumerate(records)]
    manifest.write_text("\n".join(lines) + "\n", "utf-8")
    local = measure(str(clip_dir), str(manifest), device="cpu", use_cache=False, n_boot=100)
    on_ray = measure(str(clip_dir), str(manifest), use_cache=False, n_boot=100, ray_address="local")
    assert "zeroshot_top1" in local, sorted(local)
    assert_same_report(on_ray, local)
    assert local.slices and set(on_ray.slices) == set(local.slices)
    for name, part in local.slices.items():
        assert_same_report(on_ray.slices[name], part)


def test_a_ray_run_and_a_local_run_share_cache_entries(
    cluster: Path,
    clip_dir: Path,
    datasets: dict[str, str],
    tmp_path: Path,
    refuse_loading: Callable[[], list[str]],
) -> None:
    spec = datasets["jsonl"]
    on_ray = measure(
        str(clip_dir), spec, samples=24, cache_dir=tmp_path, n_boot=100, ray_address="local"
    )
    assert len(list(tmp_path.glob("*.npz"))) == 1
    # The local run finds the Ray run's entry: it loads no model on this process.
    tried = refuse_loading()
    lazy = load_model(str(clip_dir), lazy=True)
    local = measure(lazy, spec, samples=24, cache_dir=tmp_path, n_boot=100)
    assert tried == [] and not lazy.loaded
    assert dict(local) == dict(on_ray) and local.ci == on_ray.ci
    # And a second Ray run finds it too: no job, no replica (the probe only hashes the files).
    again = measure(
        str(clip_dir), spec, samples=24, cache_dir=tmp_path, n_boot=100, ray_address="local"
    )
    assert dict(again) == dict(on_ray)
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_a_factory_models_local_entry_is_found_by_a_ray_run_without_a_job(
    cluster: Path, datasets: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_modgap.embedding.ray.job import RayEmbeddingJob

    spec = "tests.embedding.ray_models:fingerprinted"
    local = measure(spec, datasets["jsonl"], samples=16, cache_dir=tmp_path, n_boot=50)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_job(*_: object, **__: object) -> None:
        raise AssertionError("a cached measurement started a Ray job")

    monkeypatch.setattr(RayEmbeddingJob, "run", no_job)
    on_ray = measure(
        spec, datasets["jsonl"], samples=16, cache_dir=tmp_path, n_boot=50, ray_address="local"
    )
    assert dict(on_ray) == dict(local)
    assert (on_ray.metadata["device"], on_ray.metadata["dtype"]) == ("cpu", "float32")


def test_a_killed_replica_is_restarted_and_the_result_is_unchanged(
    cluster: Path, datasets: dict[str, str]
) -> None:
    spec = "tests.embedding.ray_models:dies_once"
    local = measure(spec, datasets["jsonl"], samples=32, use_cache=False, n_boot=100, batch_size=8)
    (cluster / ray_models.ARMED).touch()
    try:
        on_ray = measure(
            spec,
            datasets["jsonl"],
            samples=32,
            use_cache=False,
            n_boot=100,
            batch_size=8,
            ray_address="local",
        )
    finally:
        (cluster / ray_models.ARMED).unlink()
    died = cluster / ray_models.DIED
    assert died.exists(), "the replica was never killed: the test did not test a retry"
    assert int(died.read_text()) != os.getpid()  # a worker died, not this process
    assert_same_report(on_ray, local)


def test_modgap_embed_writes_shards_that_read_back_as_the_local_embeddings(
    cluster: Path, clip_dir: Path, datasets: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "embedded"
    status = main(
        [
            "embed",
            "--model",
            str(clip_dir),
            "--dataset",
            datasets["wds"],
            "--ray-address",
            "local",
            "--batch-size",
            "8",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    image, text, text2, groups = PrecomputedEmbeddings(f"embeddings:{out}", out).load()
    pairs = load_dataset(datasets["wds"]).sample(None)
    local = embed_pairs(pairs, load_encoder(str(clip_dir), device="cpu"), batch_size=8)
    np.testing.assert_allclose(image, local.image, atol=TOLERANCE)
    np.testing.assert_allclose(text, local.text, atol=TOLERANCE)
    assert text2 is not None and local.text2 is not None
    np.testing.assert_allclose(text2, local.text2, atol=TOLERANCE)
    assert groups is not None and list(groups) == list(pairs.groups or [])
    # Measured from the folder like any embeddings file.
    report = measure(f"embeddings:{out}", samples=None, use_cache=False, n_boot=50)
    assert report.n == len(pairs)


def test_a_broken_image_on_a_worker_is_the_local_error(
    cluster: Path, clip_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    manifest = write_jsonl(tmp_path, make_pairs(6))
    (tmp_path / "images" / "000003.png").write_bytes(b"not an image")
    started = time.monotonic()
    with pytest.raises(DatasetError, match=r"Cannot read image .*000003\.png") as caught:
        measure(str(clip_dir), str(manifest), use_cache=False, ci=None, ray_address="local")
    assert "Traceback" not in str(caught.value)
    assert time.monotonic() - started < 120
    printed = capfd.readouterr()
    for ray_line in RAY_LINES:
        assert ray_line not in printed.err + printed.out, printed.err[-3000:]


def test_a_model_that_fails_to_load_on_the_probe_is_the_local_error(
    cluster: Path, datasets: dict[str, str], tmp_path: Path
) -> None:
    spec = "tests.embedding.ray_models:no_such_factory"
    with pytest.raises(EncoderError) as local:
        measure(spec, datasets["jsonl"], samples=8, cache_dir=tmp_path, ci=None)
    with pytest.raises(EncoderError) as on_ray:
        measure(
            spec, datasets["jsonl"], samples=8, cache_dir=tmp_path, ci=None, ray_address="local"
        )
    assert type(on_ray.value) is type(local.value)  # not Ray's exception class mixed in
    assert str(on_ray.value) == str(local.value)


def test_the_plugin_option_runs_the_tests_measurements_on_ray(
    cluster: Path, clip_dir: Path, datasets: dict[str, str], pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_gap=f"""
        import pytest

        @pytest.mark.modgap(dataset={datasets["jsonl"]!r}, samples=16)
        def test_gap(modgap):
            report = modgap.measure()
            assert report.metadata["ray_address"] == "local"
        """
    )
    result = pytester.runpytest_inprocess(
        f"--modgap-model={clip_dir}",
        "--modgap-ray-address=local",
        "--modgap-no-cache",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)


def test_the_plugin_refuses_a_ray_address_without_ray_before_any_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("--modgap-ray-address=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modgap-ray-address*pytest-modgap[[]ray[]]*"])


@pytest.mark.parametrize(
    "option", ["--modgap-ray-address=head:port", "--modgap-ray-address=ray://:10001"]
)
def test_the_plugin_refuses_a_malformed_ray_address_before_any_test(
    pytester: pytest.Pytester, option: str
) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}*is not 'local', 'auto', 'ray://HOST:PORT'*"])
    result.stdout.no_fnmatch_line("*test_nothing*")


def test_an_address_of_the_right_form_passes_the_form_check_without_connecting(
    not_connected: None,
) -> None:
    from pytest_modgap.embedding.ray.cluster import check_address_form

    for address in ("local", "auto", " auto ", "ray://head:10001", "10.0.0.1:6379", "[::1]:6379"):
        check_address_form(address)


# Connecting: without the cluster fixture, so that Ray is not yet initialised in the process.


@pytest.fixture(name="not_connected")
def not_connected_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    not_connected(monkeypatch)


def not_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray as in a process that has not called ``ray.init``, and whose ``ray.init`` must not run."""
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", _no_init)


def _no_init(**_: object) -> None:
    raise AssertionError("ray.init was called for an address that does not answer")


def test_an_address_nobody_listens_on_fails_fast_naming_it(not_connected: None) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from pytest_modgap.embedding.ray.cluster import connect

    started = time.monotonic()
    with pytest.raises(ModgapInputError, match=rf"ray://127\.0\.0\.1:{port}.*cannot be reached"):
        connect(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - started < 30


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the server socket closed at teardown
            while True:
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    for connection in held:
        connection.close()


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_that_never_answers_fails_within_the_connect_timeout(
    not_connected: None, monkeypatch: pytest.MonkeyPatch, silent_listener: int, scheme: str
) -> None:
    import pytest_modgap.embedding.ray.cluster as ray_cluster

    monkeypatch.setattr(ray_cluster, "CONNECT_TIMEOUT_S", 2.0)
    address = f"{scheme}127.0.0.1:{silent_listener}"
    started = time.monotonic()
    with pytest.raises(
        ModgapInputError, match=r"no gRPC answer within 2 s.*'ray://HOST:PORT'"
    ) as err:
        ray_cluster.connect(address)
    assert time.monotonic() - started < 2.0 + 1.0
    assert address in str(err.value)


def test_a_port_that_speaks_another_protocol_is_refused_at_once(not_connected: None) -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def answer_like_a_web_server() -> None:
        connection = server.accept()[0]
        connection.recv(64)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        connection.close()

    threading.Thread(target=answer_like_a_web_server, daemon=True).start()
    from pytest_modgap.embedding.ray.cluster import connect

    port = server.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ModgapInputError, match=r"does not speak gRPC.*HTTP/1\.1.*8265"):
        connect(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    server.close()


def test_the_clusters_own_gcs_port_passes_the_port_check(cluster: Path) -> None:
    from pytest_modgap.embedding.ray.cluster import check_port

    check_port(ray.get_runtime_context().gcs_address)


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_grpc_port_that_is_no_ray_port_is_refused_at_once(
    cluster: Path, not_connected: None, scheme: str
) -> None:
    """A raylet's port: a gRPC server with neither the GCS's nor the Ray Client's services."""
    from pytest_modgap.embedding.ray.cluster import connect

    address = f"{scheme}127.0.0.1:{ray.nodes()[0]['NodeManagerPort']}"
    started = time.monotonic()
    with pytest.raises(ModgapInputError, match=r"answers gRPC but is neither a") as err:
        connect(address)
    assert time.monotonic() - started < 5
    assert f"'{address}'" in str(err.value)


def test_a_ray_client_port_given_without_ray_scheme_is_refused_naming_the_ray_form() -> None:
    """The reported case (ray.init retried for 21 s, then failed): the answers a Ray Client
    server gives, which needs grpcio to run, so not started here (measured by hand)."""
    from pytest_modgap.embedding.ray.cluster import _check_kind
    from pytest_modgap.embedding.ray.port_probe import Answer

    for client_server in (Answer.SERVED, Answer.UNCLEAR):
        with pytest.raises(ModgapInputError, match=r"is a Ray Client port.*'ray://head:10001'"):
            _check_kind("head:10001", "head", 10001, Answer.UNIMPLEMENTED, client_server)
    _check_kind("ray://head:10001", "head", 10001, Answer.UNIMPLEMENTED, Answer.SERVED)
    _check_kind("head:6379", "head", 6379, Answer.SERVED, None)
    _check_kind("head:6379", "head", 6379, Answer.UNCLEAR, None)  # a GCS that wants a token


def test_a_ray_client_address_on_a_gcs_port_is_refused_naming_the_gcs_form(
    cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_modgap.embedding.ray.cluster import connect

    gcs = ray.get_runtime_context().gcs_address
    not_connected(monkeypatch)  # after the line above, which would start a cluster
    started = time.monotonic()
    with pytest.raises(ModgapInputError) as err:
        connect(f"ray://{gcs}")
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "is a GCS port" in message and f"'{gcs}' (without ray://)" in message, message


def test_the_grpc_status_is_read_from_literal_header_fields() -> None:
    from pytest_modgap.embedding.ray.port_probe import grpc_status

    def literal(name: bytes, value: bytes) -> bytes:  # without indexing, new name, no Huffman
        return bytes((0, len(name))) + name + bytes((len(value),)) + value

    status_200, huffman_value = b"\x88", bytes((0, 4)) + b"abcd" + bytes((0x82,)) + b"\xff\xff"
    block = status_200 + huffman_value + literal(b"grpc-status", b"12") + literal(b"x", b"y")
    assert grpc_status(block) == 12
    assert grpc_status(status_200 + literal(b"grpc-message", b"12")) is None
    assert grpc_status(block[:-5]) == 12 and grpc_status(b"\x00\x7f") is None


def test_the_tests_cluster_listens_on_loopback_only(cluster: Path) -> None:
    host = ray.get_runtime_context().gcs_address.rpartition(":")[0]
    nodes = {node["NodeManagerAddress"] for node in ray.nodes()}
    assert host == "127.0.0.1" and nodes == {"127.0.0.1"}, (host, nodes)


def test_the_connect_timeout_leaves_room_inside_30_seconds() -> None:
    from pytest_modgap.embedding.ray.cluster import CONNECT_TIMEOUT_S

    assert CONNECT_TIMEOUT_S <= 10


@pytest.mark.parametrize("address", ["", "ray://head", "head:port", "ray://:10001"])
def test_a_malformed_address_is_refused_with_the_forms_that_work(
    not_connected: None, address: str
) -> None:
    from pytest_modgap.embedding.ray.cluster import connect

    with pytest.raises(ModgapInputError, match=r"'local'.*'auto'.*ray://HEAD:10001"):
        connect(address)


def test_an_encoder_object_cannot_travel_to_the_replicas(not_connected: None) -> None:
    from pytest_modgap.embedding.measurement import LoadedModel

    encoder = ray_models.fingerprinted()
    with pytest.raises(ModgapInputError, match=r"encoder object loaded in this process.*spec"):
        measure(LoadedModel(encoder.spec, encoder), samples=8, use_cache=False, ray_address="local")


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ModgapInputError, match=r"\[ray\] extra.*pytest-modgap\[ray\]"):
        measure("unused-model", ray_address="local", use_cache=False)


def test_the_plan_puts_one_replica_on_each_gpu_and_decodes_on_the_other_cpus() -> None:
    assert RayPlan.for_cluster({"CPU": 64, "GPU": 8}, None) == RayPlan(
        encoders=8, decoders=56, encoder_gpus=1.0
    )
    # Without GPUs: one decoder per 8 CPUs, a 4-thread replica on each 4 of the others.
    assert RayPlan.for_cluster({"CPU": 64, "GPU": 8}, "cpu") == RayPlan(
        encoders=14, decoders=8, encoder_cpus=4.0
    )
    assert RayPlan.for_cluster({"CPU": 2}, None) == RayPlan(encoders=1, decoders=1)
    assert RayPlan.for_cluster({"CPU": 2, "GPU": 1}, None).device == "cuda"
    # As many GPUs as CPUs (KubeRay pods of 1 CPU + 1 GPU): one CPU still decodes.
    assert RayPlan.for_cluster({"CPU": 4, "GPU": 4}, None) == RayPlan(
        encoders=4, decoders=1, encoder_gpus=1.0, encoder_cpus=0.75
    )


@pytest.mark.parametrize("gpus", [0, 1, 2, 4, 8])
@pytest.mark.parametrize("cpus", [2, 3, 4, 7, 8, 16, 64, 100])
def test_a_plan_never_asks_for_more_cpus_or_gpus_than_the_cluster_has(cpus: int, gpus: int) -> None:
    plan = RayPlan.for_cluster({"CPU": cpus, "GPU": gpus}, None)
    asked = plan.encoders * plan.encoder_cpus + plan.decoders * plan.decoder_cpus
    assert asked <= cpus + 1e-9 and plan.encoders * plan.encoder_gpus <= gpus
    assert plan.encoders >= 1 and plan.decoders >= 1


def test_a_worker_error_is_found_in_the_traceback_text_ray_carries() -> None:
    from pytest_modgap.embedding.ray.errors import worker_error

    text = (
        "ray::MapWorker.submit()\n  File x, line 1\nPIL.UnidentifiedImageError: bad\n\nThe above "
        "exception was the direct cause of the following exception:\n\n"
        "pytest_modgap.errors.DatasetError: Cannot read image a.png (line 4): bad. Fix it.\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "ray.exceptions.UserCodeException: UDF failed to process a data block."
    )
    found = worker_error(RuntimeError(text))
    assert isinstance(found, DatasetError)
    assert str(found) == "Cannot read image a.png (line 4): bad. Fix it."
    # Another error that broke out while the first was handled is the one that matters.
    handled = text + "\n\nDuring handling of the above exception, another exception occurred:\n"
    assert worker_error(RuntimeError(handled + "KeyError: 'x'")) is None
    assert worker_error(RuntimeError("ValueError: not ours")) is None


@pytest.mark.parametrize(
    ("resources", "device", "problem"),
    [
        ({"CPU": 8}, "cuda", "has no GPUs"),
        ({"CPU": 8, "GPU": 1}, "mps", "'cuda'.*or 'cpu'"),
        ({"CPU": 1}, None, "needs at least 2"),
    ],
)
def test_a_plan_the_cluster_cannot_run_is_refused(
    resources: dict[str, float], device: str | None, problem: str
) -> None:
    with pytest.raises(ModgapInputError, match=problem):
        RayPlan.for_cluster(resources, device)


def test_a_replica_refuses_images_its_decoders_prepared_otherwise() -> None:
    from pytest_modgap.embedding.ray.actors import ReplicaEncoder

    replica = ReplicaEncoder.__new__(ReplicaEncoder)  # no model: only the check is under test
    replica.encoder = ray_models.DiesOnce(inner=None)
    replica.recipe = "size=224 by CLIPImageProcessorPil|transformers=5.0,pillow=12.0"
    same = {replica.recipe}
    replica._check_recipe(same, whole=True)
    fast = {"size=224 by CLIPImageProcessorFast|transformers=5.0,pillow=12.0"}
    with pytest.raises(EncoderError, match=r"CLIPImageProcessorFast.*same transformers and Pillow"):
        replica._check_recipe(fast, whole=True)
    replica._check_recipe(fast, whole=False)  # decoded pixels: only the decoding libraries count
    other_pillow = {"size=224 by CLIPImageProcessorPil|transformers=5.0,pillow=11.0"}
    with pytest.raises(EncoderError):
        replica._check_recipe(other_pillow, whole=False)


@pytest.mark.parametrize("wanted", [False, True])
def test_rays_own_warnings_are_kept_out_unless_its_logs_are_asked_for(
    monkeypatch: pytest.MonkeyPatch, wanted: bool
) -> None:
    import logging
    import warnings

    from pytest_modgap.embedding.ray.logs import (
        RAY_LOGS_ENV,
        quiet_ray_start,
        quiet_ray_warnings,
        ray_logging_level,
    )

    monkeypatch.setenv(RAY_LOGS_ENV, "1" if wanted else "0")
    monkeypatch.delenv("RAY_BACKEND_LOG_LEVEL", raising=False)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # as pytest shows them
        with quiet_ray_warnings():
            warnings.warn_explicit(
                "renamed", DeprecationWarning, "context.py", 1, module="ray.data"
            )
    assert len(shown) == int(wanted)
    assert (ray_logging_level() < logging.WARNING) is wanted
    with quiet_ray_start():
        assert ("RAY_BACKEND_LOG_LEVEL" in os.environ) is not wanted
    assert "RAY_BACKEND_LOG_LEVEL" not in os.environ
