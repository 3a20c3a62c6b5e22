"""Checked, cached downloads against a loopback HTTP server (no network), and the downloaded Shakespeare corpus."""

import hashlib
import http.server
import threading
import time

import numpy as np
import pytest

from numpy2gpt.gpt import corpora
from numpy2gpt.gpt.data import load_meta, load_split, prepare
from numpy2gpt.gpt.download import ChecksumError, DownloadError, cached_download, download, get_cache_dir


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """A threaded HTTP server on 127.0.0.1 (port chosen by the OS) serving ``files``; counts requests per path."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.announced: dict[str, int] = {}  # a Content-Length other than the body's (a connection cut short)
        self.requests: dict[str, int] = {}
        self.unannounced: set[str] = set()  # paths served with no Content-Length (the body ends when the server closes)
        self.trickle: set[str] = set()  # paths whose body comes one byte every 20 ms
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if self.path not in server.unannounced:
                    self.send_header("Content-Length", str(server.announced.get(self.path, len(body))))
                self.end_headers()
                if self.path in server.trickle:
                    for i in range(len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.02)
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy configured in the environment must not see these requests
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    s = Server()
    yield s
    s.close()


GOOD = b"The quick brown fox jumps over the lazy dog.\n" * 100


def test_cached_download_fetches_once(server, tmp_path, tmp_path_factory):
    server.files["/good.txt"] = GOOD
    url = server.url("/good.txt")
    path = cached_download(url, sha(GOOD), cache_dir=tmp_path)
    assert path.read_bytes() == GOOD
    assert path.parent == tmp_path and path.name.endswith("good.txt")
    assert server.requests["/good.txt"] == 1
    again = cached_download(url, sha(GOOD), cache_dir=tmp_path)  # a matching cached file needs no network
    assert again == path and server.requests["/good.txt"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary files left
    ref = tmp_path_factory.mktemp("ref") / "ref"
    ref.write_bytes(b"")
    assert path.stat().st_mode == ref.stat().st_mode  # ordinary permissions (not a temp file's 0600)


def test_cached_download_uses_env_cache_dir(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY2GPT_CACHE", str(tmp_path / "cache"))
    assert get_cache_dir() == tmp_path / "cache"
    server.files["/f.bin"] = GOOD
    path = cached_download(server.url("/f.bin"), sha(GOOD))
    assert path.parent == tmp_path / "cache" and path.read_bytes() == GOOD
    monkeypatch.delenv("NUMPY2GPT_CACHE")
    assert get_cache_dir().parts[-2:] == (".cache", "numpy2gpt")


def test_wrong_checksum_is_refused_and_nothing_is_cached(server, tmp_path):
    server.files["/bad.txt"] = b"tampered"
    url = server.url("/bad.txt")
    with pytest.raises(ChecksumError) as e:
        cached_download(url, sha(GOOD), cache_dir=tmp_path)
    msg = str(e.value)
    assert url in msg and sha(GOOD) in msg and sha(b"tampered") in msg
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary copy
    with pytest.raises(ChecksumError):  # and nothing cached: the next call asks the server again
        cached_download(url, sha(GOOD), cache_dir=tmp_path)
    assert server.requests["/bad.txt"] == 2


def test_corrupted_cache_entry_is_downloaded_again(server, tmp_path):
    server.files["/good.txt"] = GOOD
    url = server.url("/good.txt")
    path = cached_download(url, sha(GOOD), cache_dir=tmp_path)
    path.write_bytes(GOOD[:-10])  # truncated
    assert cached_download(url, sha(GOOD), cache_dir=tmp_path) == path
    assert path.read_bytes() == GOOD
    assert server.requests["/good.txt"] == 2


def test_download_mismatch_keeps_existing_dest(server, tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_bytes(b"old")
    server.files["/x"] = b"new"
    with pytest.raises(ChecksumError):
        download(server.url("/x"), dest, sha(b"something else"))
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert download(server.url("/x"), dest, sha(b"new").upper()) == dest  # hex case does not matter
    assert dest.read_bytes() == b"new"


def test_download_http_error_and_unreachable(server, tmp_path):
    url = server.url("/missing")
    with pytest.raises(DownloadError, match=r"could not download .*/missing.*404"):
        download(url, tmp_path / "m", sha(GOOD))
    port = server.httpd.server_address[1]
    server.close()
    server.close = lambda: None  # already closed for the fixture
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}"):
        download(f"http://127.0.0.1:{port}/good.txt", tmp_path / "m", sha(GOOD), timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_download_cut_short_is_a_download_error(server, tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_bytes(b"old")
    server.files["/short"] = GOOD[:1000]
    server.announced["/short"] = len(GOOD)  # the server promises the whole file, then closes the connection
    with pytest.raises(DownloadError, match=f"interrupted: got 1000 of the {len(GOOD)} bytes"):
        download(server.url("/short"), dest, sha(GOOD))
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_download_with_progress_bar(server, tmp_path, capsys):
    big = np.random.default_rng(0).bytes(3 << 20)  # 3 MiB: shows a tqdm bar
    server.files["/big.bin"] = big
    path = download(server.url("/big.bin"), tmp_path / "big.bin", sha(big))
    assert path.read_bytes() == big
    assert "big.bin" in capsys.readouterr().err


def test_bad_sha256_argument(tmp_path):
    with pytest.raises(ValueError, match="64 hexadecimal"):
        download("http://127.0.0.1:9/x", tmp_path / "x", "abc")


# ---------------------------------------------------------------------------------------------------------------------
# The downloaded corpus (tiny Shakespeare): loopback server instead of GitHub, same checks.

FAKE_SHAKESPEARE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20


def test_shakespeare_is_downloaded_verified_and_cached(server, tmp_path, monkeypatch):
    body = FAKE_SHAKESPEARE.encode()
    server.files["/input.txt"] = body
    monkeypatch.setenv("NUMPY2GPT_SHAKESPEARE_URL", server.url("/input.txt"))
    monkeypatch.setenv("NUMPY2GPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(corpora, "SHAKESPEARE_SHA256", sha(body))  # the real hash is for the real text
    out = prepare("shakespeare_char", out_dir=tmp_path / "sh")
    meta = load_meta(out)
    assert meta["dataset"] == "shakespeare_char" and server.url("/input.txt") in meta["source"]
    assert meta["corpus_sha256"] == sha(body)
    n = len(FAKE_SHAKESPEARE)
    assert meta["train_tokens"] == int(n * 0.9) and meta["val_tokens"] == n - int(n * 0.9)
    train = load_split(out, "train")
    assert "".join(meta["tokenizer"]["chars"][i] for i in train[:14]) == "First Citizen:"
    prepare("shakespeare", out_dir=tmp_path / "sh2")  # alias; served from the cache
    assert server.requests["/input.txt"] == 1


def test_shakespeare_wrong_content_is_refused(server, tmp_path, monkeypatch):
    server.files["/input.txt"] = FAKE_SHAKESPEARE.encode()  # does not match the real text's hash
    monkeypatch.setenv("NUMPY2GPT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ChecksumError, match=corpora.SHAKESPEARE_SHA256):
        prepare("shakespeare_char", out_dir=tmp_path / "sh", url=server.url("/input.txt"))
    assert list((tmp_path / "cache").iterdir()) == []
    assert not (tmp_path / "sh" / "meta.json").exists()


def test_shakespeare_defaults_to_nanogpt_address():
    assert corpora.SHAKESPEARE_URL == (
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    )
    assert corpora.SHAKESPEARE_SHA256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def test_download_size_cap(server, tmp_path):
    """Issue 9 item 13: a server cannot make the downloader write more than ``max_bytes``, announced or not."""
    server.files["/big"] = GOOD
    with pytest.raises(DownloadError, match=rf"is {len(GOOD):,} bytes, more than the 1,000 allowed"):
        download(server.url("/big"), tmp_path / "big.txt", sha(GOOD), max_bytes=1000)
    server.unannounced.add("/big")
    with pytest.raises(DownloadError, match="sent more than the 1,000 bytes allowed; nothing was saved"):
        download(server.url("/big"), tmp_path / "big.txt", sha(GOOD), max_bytes=1000)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind
    assert download(server.url("/big"), tmp_path / "big.txt", sha(GOOD), max_bytes=len(GOOD)).read_bytes() == GOOD


def test_download_deadline(server, tmp_path):
    """A server sending a trickle (each read within the socket timeout) is stopped at the overall deadline."""
    server.files["/slow"] = GOOD
    server.trickle.add("/slow")
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"took longer than 0.5 s; nothing was saved"):
        download(server.url("/slow"), tmp_path / "slow.txt", sha(GOOD), timeout=5, deadline=0.5)
    assert time.monotonic() - start < 4  # the whole body would take 90 s
    assert list(tmp_path.iterdir()) == []


def test_stale_partial_downloads_are_removed(server, tmp_path):
    server.files["/good.txt"] = GOOD
    stale = tmp_path / ".good.txt.0123456789ab.tmp"  # left by a download that was killed
    stale.write_bytes(GOOD[:10])
    download(server.url("/good.txt"), tmp_path / "good.txt", sha(GOOD))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.txt"]
