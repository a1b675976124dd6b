"""Upload and filter helpers of the app: names are sanitised, files land only in uploads."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui import app


@pytest.mark.parametrize("name,expected", [
    ("story.txt", "story.txt"), ("../../etc/passwd.TXT", "passwd.txt"),
    ("..\\..\\win.ini.md", "win.ini.md"), (".hidden.json", "hidden.json"),
    ("a b<c>.html", "a_b_c.html"), ("...txt", "upload.txt"),
])
def test_safe_filename(name: str, expected: str) -> None:
    assert app.safe_filename(name) == expected


@pytest.mark.parametrize("name", ["evil.exe", "noext", "x.txt.sh", "../"])
def test_safe_filename_rejects_other_types(name: str) -> None:
    with pytest.raises(ValueError, match="unsupported file type"):
        app.safe_filename(name)


def test_store_upload_stays_in_uploads_and_does_not_clobber(tmp_path: Path) -> None:
    uploads = tmp_path / "data" / "uploads"
    one = tmp_path / "one.txt"
    one.write_text("first story", encoding="utf-8")
    two = tmp_path / "two.txt"
    two.write_text("second story", encoding="utf-8")
    a = app.store_upload(one, "../../escape.txt", uploads, 1024)
    b = app.store_upload(two, "../../escape.txt", uploads, 1024)
    again = app.store_upload(one, "escape.txt", uploads, 1024)
    assert a.parent == uploads.resolve() and b.parent == uploads.resolve()
    assert (a.name, b.name, again) == ("escape.txt", "escape-2.txt", a)
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(ValueError, match="limit"):
        app.store_upload(one, "big.txt", uploads, 5)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        app.store_upload(empty, "empty.txt", uploads, 1024)


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
    assert app.is_loopback("127.0.0.1") and app.is_loopback("localhost")
    assert app.is_loopback("::1")
    assert not app.is_loopback("0.0.0.0") and not app.is_loopback("example.org")
    assert app.parse_auth("") is None
    assert app.parse_auth("ed:s3:cret") == ("ed", "s3:cret")


def test_exposure_warning_only_for_open_non_loopback_hosts() -> None:
    assert "WARNING" in app.exposure_warning("0.0.0.0", None)
    assert app.exposure_warning("0.0.0.0", ("ed", "pw")) == ""
    assert app.exposure_warning("127.0.0.1", None) == ""


def test_api_safe_renames_path_keys() -> None:
    data = {"citations": [{"path": "a.txt", "quote": "q"}], "errors": ({"path": "b"},)}
    assert app.api_safe(data) == {"citations": [{"file": "a.txt", "quote": "q"}],
                                  "errors": [{"file": "b"}]}
