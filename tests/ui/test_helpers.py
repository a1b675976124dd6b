"""Upload, filter and binding helpers of the app: names are sanitised, files land only in
uploads, every indexable type is accepted, a busy port is one clear error, offline by import."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from index.errors import SettingsError
from index.settings import OFFLINE_ENV
from index.sources import SUPPORTED_SUFFIXES
from tests.conftest import ROOT
from ui import app, binding
from ui import uploads as upload_files


@pytest.mark.parametrize("name,expected", [
    ("story.txt", "story.txt"), ("../../etc/passwd.TXT", "passwd.txt"),
    ("..\\..\\win.ini.md", "win.ini.md"), (".hidden.json", "hidden.json"),
    ("a b<c>.html", "a_b_c.html"), ("...txt", "upload.txt"),
])
def test_safe_filename(name: str, expected: str) -> None:
    assert upload_files.safe_filename(name) == expected


@pytest.mark.parametrize("name", ["evil.exe", "noext", "x.txt.sh", "../"])
def test_safe_filename_rejects_other_types(name: str) -> None:
    with pytest.raises(ValueError, match="unsupported file type"):
        upload_files.safe_filename(name)


def test_store_upload_stays_in_uploads_and_does_not_clobber(tmp_path: Path) -> None:
    uploads = tmp_path / "data" / "uploads"
    one = tmp_path / "one.txt"
    one.write_text("first story", encoding="utf-8")
    two = tmp_path / "two.txt"
    two.write_text("second story", encoding="utf-8")
    a = upload_files.store_upload(one, "../../escape.txt", uploads, 1024)
    b = upload_files.store_upload(two, "../../escape.txt", uploads, 1024)
    again = upload_files.store_upload(one, "escape.txt", uploads, 1024)
    assert a.parent == uploads.resolve() and b.parent == uploads.resolve()
    assert (a.name, b.name, again) == ("escape.txt", "escape-2.txt", a)
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(ValueError, match="limit"):
        upload_files.store_upload(one, "big.txt", uploads, 5)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        upload_files.store_upload(empty, "empty.txt", uploads, 1024)


def test_every_indexable_suffix_is_accepted_for_upload(tmp_path: Path) -> None:
    assert set(upload_files.UPLOAD_TYPES) == set(SUPPORTED_SUFFIXES)
    assert upload_files.safe_filename("Notes.MARKDOWN") == "Notes.markdown"
    stored = []
    for name, text in (("desk notes.markdown", "# Harbour\nThe pier closes in March."),
                       ("wire.ndjson", json.dumps({"title": "Pier", "body": "It closes."}))):
        source = tmp_path / name
        source.write_text(text, encoding="utf-8")
        stored.append(upload_files.store_upload(source, name, tmp_path / "uploads", 1024).name)
    assert stored == ["desk_notes.markdown", "wire.ndjson"]


def test_parse_filters_validates_dates() -> None:
    assert app.parse_filters(["Xinhua", ""], " 2019-01-01 ", "") == {
        "sources": ["Xinhua"], "since": "2019-01-01", "until": None}
    assert app.parse_filters("A, B", None, None)["sources"] == ["A", "B"]
    with pytest.raises(ValueError, match="From date"):
        app.parse_filters(None, "2019/01/01", "")
    with pytest.raises(ValueError, match="To date is not a real date"):
        app.parse_filters(None, "", "2019-02-30")
    with pytest.raises(ValueError, match="after"):
        app.parse_filters(None, "2020-01-01", "2019-01-01")


def test_loopback_and_auth() -> None:
    assert binding.is_loopback("127.0.0.1") and binding.is_loopback("localhost")
    assert binding.is_loopback("::1")
    assert not binding.is_loopback("0.0.0.0") and not binding.is_loopback("example.org")
    assert binding.parse_auth("") is None
    assert binding.parse_auth("ed:s3:cret") == ("ed", "s3:cret")


def test_exposure_warning_only_for_open_non_loopback_hosts() -> None:
    assert "WARNING" in binding.exposure_warning("0.0.0.0", None)
    assert binding.exposure_warning("0.0.0.0", ("ed", "pw")) == ""
    assert binding.exposure_warning("127.0.0.1", None) == ""


def test_api_safe_renames_path_keys() -> None:
    data = {"citations": [{"path": "a.txt", "quote": "q"}], "errors": ({"path": "b"},)}
    assert app.api_safe(data) == {"citations": [{"file": "a.txt", "quote": "q"}],
                                  "errors": [{"file": "b"}]}


def test_a_taken_port_is_one_clear_settings_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SettingsError, match=f"127.0.0.1:{port}: .*--port"):
            binding.check_bindable("127.0.0.1", port)
    binding.check_bindable("127.0.0.1", port)  # free again
    binding.check_bindable("127.0.0.1", 0)


def test_importing_the_app_applies_the_offline_environment() -> None:
    """A script that only imports ui.app (no CLI) gets the offline environment, and gets it
    before gradio and huggingface_hub read it at import time."""
    keys = sorted(OFFLINE_ENV)
    code = ("import os, json, ui.app, gradio.analytics, huggingface_hub.constants as hub; "
            f"print(json.dumps({{'env': {{k: os.environ.get(k) for k in {keys!r}}}, "
            "'gradio': gradio.analytics.analytics_enabled(), 'hub': hub.HF_HUB_OFFLINE}))")
    clean = {k: v for k, v in os.environ.items()
             if k not in OFFLINE_ENV and not k.startswith(("HF_", "GRADIO_"))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=clean, timeout=300, check=True)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"env": OFFLINE_ENV, "gradio": False, "hub": True}
