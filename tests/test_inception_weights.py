"""The FID InceptionV3 weights: loading pytorch-fid's file strictly, fetching it once with its hash
checked (from a loopback server: no test reaches outside this machine), and Inception as the
default extractor for images the digit CNN cannot score."""

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.inception import InceptionV3FID, load_inception


@pytest.fixture(scope="module")
def reference_state():
    """Random weights with exactly the keys of pytorch-fid's pt_inception-2015-12-05 file
    (torchvision's InceptionV3 with a 1008-class fc and no auxiliary head)."""
    torch.manual_seed(0)
    sd = InceptionV3FID().state_dict()
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1008, 2048) * 0.01, torch.zeros(1008)
    return sd


def test_weights_load_with_or_without_batchnorm_counters(tmp_path, reference_state):
    counters = [k for k in reference_state if k.endswith(".bn.num_batches_tracked")]
    assert len(counters) == 94
    torch.save(reference_state, tmp_path / "with.pth")
    torch.save({k: v for k, v in reference_state.items() if k not in counters}, tmp_path / "without.pth")
    a, b = (load_inception(tmp_path / f, for_inference=False) for f in ("with.pth", "without.pth"))
    w = "Mixed_7c.branch_pool.conv.weight"
    assert torch.equal(a.state_dict()[w], reference_state[w]) and torch.equal(b.state_dict()[w], reference_state[w])
    assert a.weights_sha256 != b.weights_sha256 and len(a.weights_sha256) == 64
    assert a.weights_sha == a.weights_sha256[:12]


@pytest.mark.parametrize("change, message", [
    ("drop", r"missing key Conv2d_1a_3x3\.bn\.running_mean\)"),
    ("extra", r"unexpected key Mixed_8a\.conv\.weight\)"),
    ("shape", r"Conv2d_1a_3x3\.conv\.weight has shape \(1,\), not \(32, 3, 3, 3\)"),
])
def test_weights_are_otherwise_strict(tmp_path, reference_state, change, message):
    sd = dict(reference_state)
    if change == "drop":
        del sd["Conv2d_1a_3x3.bn.running_mean"]
    elif change == "extra":
        sd["Mixed_8a.conv.weight"] = torch.zeros(1)
    else:
        sd["Conv2d_1a_3x3.conv.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(GankitError, match=message) as e:
        load_inception(tmp_path / "w.pth")
    assert "\n" not in str(e.value)


class _Server:
    """A loopback HTTP server of one file: counts requests; `truncate` announces more bytes than it sends."""

    def __init__(self, body: bytes, name: str):
        import http.server
        import threading

        self.body, self.name, self.hits, self.truncate = body, name, 0, False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if self.path != f"/{outer.name}":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body) + (1000 if outer.truncate else 0)))
                self.end_headers()
                self.wfile.write(outer.body)  # HTTP/1.0: the connection closes after it

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served():
    import hashlib
    import os

    body = os.urandom(3 << 20)
    digest = hashlib.sha256(body).hexdigest()
    server = _Server(body, f"w-{digest[:8]}.pth")
    server.digest = digest
    yield server
    server.close()


def _fetch(server, sha):
    from gankit.metrics.weights import fetch

    return fetch(server.url, sha, what="FID InceptionV3 weights", flag="--inception FILE", progress=False)


def _left(tmp_path):
    d = tmp_path / "weights"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_fetch_downloads_once_and_keeps_the_full_hash(served, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    path = _fetch(served, served.digest[:8])
    assert path == tmp_path / "weights" / served.name and path.read_bytes() == served.body
    record = path.with_name(served.name + ".sha256")
    assert record.read_text().strip() == served.digest  # trust on first use
    assert _fetch(served, served.digest[:8]) == path and served.hits == 1  # cached: no second download
    record.unlink()  # a cached copy that matches the prefix gets its record back, still without a download
    assert _fetch(served, served.digest[:8]) == path and served.hits == 1
    assert record.read_text().strip() == served.digest
    path.write_bytes(served.body[:100])  # a damaged cached copy is fetched again
    assert _fetch(served, served.digest[:8]).read_bytes() == served.body and served.hits == 2
    # once recorded, the full hash is required: other bytes behind the same prefix are refused
    record.write_text(served.digest[:8] + "0" * 56)
    with pytest.raises(GankitError, match=f"expected sha256 {served.digest[:8]}0{{56}}: deleted, not used"):
        _fetch(served, served.digest[:8])
    assert _left(tmp_path) == [record.name] and served.hits == 3
    # a publisher's full hash needs no record
    record.unlink()
    assert _fetch(served, served.digest).read_bytes() == served.body and _left(tmp_path) == [served.name]


def test_fetch_refuses_a_wrong_hash(served, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    with pytest.raises(GankitError) as e:
        _fetch(served, "00000000")
    msg = str(e.value)
    assert msg == (f"{served.name} downloaded from {served.url} has sha256 {served.digest}, expected sha256 "
                   "starting 00000000: deleted, not used; download it yourself and pass --inception FILE")
    assert _left(tmp_path) == []


def test_fetch_refuses_a_truncated_transfer(served, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    served.truncate = True
    n = len(served.body)
    with pytest.raises(GankitError, match=rf"\(truncated: {n} of {n + 1000} bytes\); expected sha256 starting "
                                          f"{served.digest[:8]}; download it yourself and pass --inception FILE"):
        _fetch(served, served.digest[:8])
    assert _left(tmp_path) == []


def test_fetch_without_a_server_names_file_url_hash_and_flag(served, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    served.close()  # a closed port: what no network looks like, quickly
    with pytest.raises(GankitError) as e:
        _fetch(served, served.digest[:8])
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot download FID InceptionV3 weights {served.name} from {served.url} (")
    assert msg.endswith(f"); expected sha256 starting {served.digest[:8]}; download it yourself and pass "
                        "--inception FILE")
    assert _left(tmp_path) == []


def test_rgb_images_get_the_fetched_inception_by_default(tmp_path, monkeypatch, reference_state):
    import hashlib

    from gankit.data import Dataset
    from gankit.metrics import evaluate, inception

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    torch.save({k: v for k, v in reference_state.items() if not k.endswith("num_batches_tracked")},
               tmp_path / "w.pth")  # as the release may be: no BatchNorm counters
    body = (tmp_path / "w.pth").read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    server = _Server(body, f"pt_inception-test-{digest[:8]}.pth")
    monkeypatch.setattr(inception, "INCEPTION_URL", server.url)
    monkeypatch.setattr(inception, "INCEPTION_SHA256", digest[:8])
    try:
        g = torch.Generator().manual_seed(0)
        rgb = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1  # 299x299 Inception on the CPU: 4 images in all
        out = evaluate(rgb[:2], Dataset(rgb[2:], None, "rgb2"), ["fid"])
    finally:
        server.close()
    assert server.hits == 1 and out["fid_inception_pytorchfid_2"] >= 0
    p = out["protocol"]
    assert p["extractor"] == "inception_pytorchfid" and p["extractor_weights"] == digest[:12]
    assert p["extractor_weights_sha256"] == digest and p["extractor_weights_source"] == server.url
