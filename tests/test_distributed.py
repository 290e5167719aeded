"""Data-parallel training through torchrun (gloo on the CPU): N processes compute what one process
computes with the same global batch, resume exactly, and two launchers on 127.0.0.1 form one run
as two "nodes" would."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import torch

from gankit.training.state import read_checkpoint

# fp32 and the default layout: the comparison is about distribution, not precision choices
COMMON = ["--set", "train.precision=fp32", "--set", "train.channels_last=off", "--set", "train.tensorboard=false",
          "--set", "train.sample_every=0", "--set", "data.n=64", "--batch", "8", "-q"]
NO_BATCH_STATS = {
    "mlp": ["mlp_mnist", "--set", "model.dropout_d=0", "--set", "model.width=16"],
    "conv": ["dcgan_mnist_fast", "--set", "model.norm_g=none", "--set", "model.norm_d=layer",
             "--set", "model.width=8"],
}


def _gankit(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "gankit", "train", *args], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


def _params(run) -> dict[str, torch.Tensor]:
    ck = read_checkpoint(run / "checkpoints" / "latest.pt")
    return {f"{part}.{k}": v for part in ("g", "d") for k, v in ck[part].items()} | {"_ck": ck}


def _close(a: dict, b: dict, tol: float) -> None:
    keys = [k for k in a if k != "_ck"]
    assert keys == [k for k in b if k != "_ck"]
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in keys)
    assert worst <= tol, f"largest parameter difference {worst:.3g}"


@pytest.mark.parametrize("net", sorted(NO_BATCH_STATS))
def test_two_processes_equal_one_process_with_the_global_batch(net, tmp_path):
    args = [*NO_BATCH_STATS[net], *COMMON, "--steps", "1"]
    _gankit(*args, "--out", str(tmp_path / "one"))
    r = _gankit(*args, "--out", str(tmp_path / "two"), "--nproc", "2")
    assert "2 processes" in r.stdout
    one, two = _params(tmp_path / "one"), _params(tmp_path / "two")
    _close(one, two, 1e-6)
    assert two["_ck"]["rng_ranks"] is not None and len(two["_ck"]["rng_ranks"]) == 2


def test_one_step_changes_parameters_so_the_equality_test_means_something(tmp_path):
    args = [*NO_BATCH_STATS["mlp"], *COMMON]
    _gankit(*args, "--steps", "1", "--out", str(tmp_path / "a"))
    _gankit(*args, "--steps", "2", "--out", str(tmp_path / "b"))
    a, b = _params(tmp_path / "a"), _params(tmp_path / "b")
    diff = max((a[k] - b[k]).abs().max().item() for k in a if k != "_ck")
    assert diff > 1e-5  # a step's update is far above the 1e-6 tolerance


def test_two_process_run_resumes_exactly(tmp_path):
    args = ["toy_ring", "--set", "model.dropout_d=0.2", *COMMON[:-5], "--batch", "16", "-q", "--nproc", "2"]
    _gankit(*args, "--steps", "6", "--out", str(tmp_path / "straight"))
    _gankit(*args, "--steps", "3", "--out", str(tmp_path / "split"))
    _gankit("--resume", str(tmp_path / "split"), "--steps", "6", "-q", "--nproc", "2")
    a, b = _params(tmp_path / "straight"), _params(tmp_path / "split")
    assert a["_ck"]["step"] == b["_ck"]["step"] == 6
    _close(a, b, 0.0)  # bit-identical, dropout included (each process's RNG is checkpointed)


def test_gradient_penalty_and_spectral_norm_train_under_ddp(tmp_path):
    _gankit("wgan_gp_mnist", *COMMON, "--set", "model.width=8", "--set", "train.n_critic=2", "--steps", "2",
            "--nproc", "2", "--out", str(tmp_path / "gp"))
    _gankit("sngan_mnist", *COMMON, "--set", "model.width=8", "--steps", "2", "--nproc", "2",
            "--out", str(tmp_path / "sn"))
    assert read_checkpoint(tmp_path / "gp" / "checkpoints" / "latest.pt")["step"] == 2


def test_two_nodes_on_loopback(tmp_path):
    """Two torchrun launchers, one process each, meeting through c10d rendezvous on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [*NO_BATCH_STATS["mlp"], *COMMON, "--steps", "1", "--out", str(tmp_path / "nodes")]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
              "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=gankit-test",
              "-m", "gankit", "train", *args]
    nodes = [subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in nodes]
    for p, (out, err) in zip(nodes, outs, strict=True):
        assert p.returncode == 0, out[-2000:] + err[-3000:]
    _gankit(*NO_BATCH_STATS["mlp"], *COMMON, "--steps", "1", "--out", str(tmp_path / "one"))
    _close(_params(tmp_path / "one"), _params(tmp_path / "nodes"), 1e-6)


def test_batch_that_does_not_split_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "toy_ring", "--batch", "7", "--steps", "1", "-q",
                        "--nproc", "2", "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=240)
    assert r.returncode != 0
    assert "train.batch=7 must split into 2 equal per-process batches" in r.stderr
