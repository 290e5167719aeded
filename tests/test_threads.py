"""Threads and the autotuner's cache (issue 17): the usable cores come from the affinity mask and
cgroup quotas, OMP_NUM_THREADS and train.threads fix the count, and a choice is timed once per
machine and model, then reused, so the same command computes the same thing whatever the load."""

import json

import torch
from conftest import tiny_config

from gankit.training import autotune, threads
from gankit.training.loop import fit


def test_cgroup_quotas_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_quota(v1) == 0.5
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_quota(v1) is None
    assert threads.cgroup_quota(tmp_path / "none") is None


def test_quota_and_affinity_cap_the_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    monkeypatch.setattr(threads, "cgroup_quota", lambda root=None: 2.5)
    assert threads.cores() == 2
    monkeypatch.setattr(threads, "cgroup_quota", lambda root=None: 0.3)
    assert threads.cores() == 1
    monkeypatch.setattr(threads, "cgroup_quota", lambda root=None: None)
    assert threads.cores() == 8
    assert threads.options(0) == [1, 7]  # one core left for the rest of the machine


def test_omp_num_threads_and_train_threads_fix_the_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.requested(0) == 1 and threads.options(0) == [1]
    assert threads.requested(3) == 3  # the config key wins over the environment
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # nested: the outer level
    assert threads.requested(0) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert threads.requested(0) == 0


def test_freed_memory_is_kept_where_glibc_allows():
    import platform

    import pytest

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert threads.keep_freed_memory() is True  # mallopt accepted both settings


def test_short_spin_respects_the_users_choice(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    threads.short_spin()
    assert threads.os.environ["GOMP_SPINCOUNT"] == "3000"
    monkeypatch.setenv("GOMP_SPINCOUNT", "123")
    threads.short_spin()
    assert threads.os.environ["GOMP_SPINCOUNT"] == "123"


def _params(out):
    from gankit.checkpoint import read_checkpoint

    ck = read_checkpoint(out / "checkpoints" / "latest.pt")
    return {**{f"g.{k}": v for k, v in ck["g"].items()}, **{f"d.{k}": v for k, v in ck["d"].items()}}


def test_nested_cgroup_quota_is_found(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "user.slice" / "app").mkdir(parents=True)
    (tmp_path / "user.slice" / "cpu.max").write_text("50000 100000\n")  # the slice limits, not the root
    (tmp_path / "user.slice" / "app" / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_quota(tmp_path, "/user.slice/app") == 0.5
    assert threads.cgroup_quota(tmp_path, "/") is None


def test_the_choice_is_timed_once_cached_and_frozen_into_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))  # no other test's cached choice
    autotune._CHOSEN.clear()  # nor this process's memo
    monkeypatch.setattr(threads, "options", lambda t: [1, 2] if not t else [t])
    fit(tiny_config("dcgan_mnist_fast", steps=2), tmp_path / "a")
    first = json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[0])
    assert first["autotune"]["cached"] is False and len(first["autotune"]["ms_per_step"]) >= 2
    assert list(autotune._cache_path("x").parent.glob("*.json"))  # kept on disk, in the cache folder
    # a second process (simulated: the in-process memo cleared) reads the cached choice, times nothing
    autotune._CHOSEN.clear()
    monkeypatch.setattr(autotune, "_time", lambda *a, **k: (_ for _ in ()).throw(AssertionError("timed again")))
    fit(tiny_config("dcgan_mnist_fast", steps=2), tmp_path / "b")
    second = json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[0])
    assert second["autotune"]["cached"] is True
    for k in ("precision", "channels_last", "threads"):
        assert second["autotune"][k] == first["autotune"][k]
    assert second["threads"] == first["autotune"]["threads"]
    a, b = _params(tmp_path / "a"), _params(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same command, the same weights
    saved = (tmp_path / "b" / "config.yaml").read_text()
    assert f"threads: {first['autotune']['threads']}" in saved  # frozen: a resume computes alike
