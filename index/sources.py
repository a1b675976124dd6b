"""Read article files into `Article`s: plain text, Markdown, JSON / JSON Lines, HTML, RSS / Atom.

Inputs are files, folders (walked recursively, following symbolic links without looping) or
glob patterns. In folders, hidden files and README.* files are not articles and are passed over
silently; other unsupported files are reported. Every problem is reported as a `(path, reason)`
skip, never raised, so one bad file cannot stop an indexing run.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from index.dates import parse_date
from index.records import Article
from index.settings import Settings

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
FEED_SUFFIXES = frozenset({".rss", ".atom", ".xml"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | JSON_SUFFIXES | HTML_SUFFIXES | FEED_SUFFIXES

_BODY_KEYS = ("body", "text", "content")
_AUTHOR_KEYS = ("author", "authors")
_DATE_KEYS = ("published", "published_at", "date")
_KNOWN_KEYS = frozenset({"title", "source", "url", *_BODY_KEYS, *_AUTHOR_KEYS, *_DATE_KEYS})
_GLOB_CHARS = re.compile(r"[*?\[]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TITLE_WORDS = 12

Skip = tuple[str, str]
"""(path, reason): one input that could not be read, or one record in it."""


@dataclass(frozen=True)
class SourceResult:
    """What one input file gave: its articles, its skips, and the stat used to detect changes."""

    path: str
    articles: tuple[Article, ...] = ()
    errors: tuple[Skip, ...] = ()
    mtime: float = 0.0
    size: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.articles)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "articles": [a.meta.to_dict() for a in self.articles],
                "errors": [{"path": p, "reason": r} for p, r in self.errors],
                "mtime": self.mtime, "size": self.size}


@dataclass(frozen=True)
class InputFile:
    """A file found while expanding the inputs, with the stat used to detect changes."""

    path: str
    mtime: float
    size: int
    root: str = field(default="", compare=False)


class _Reject(Exception):
    """Internal: this file or record cannot become an article, for `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- finding files -------------------------------------------------------------------------

def normalise_path(path: str | os.PathLike[str]) -> str:
    """Absolute, normalised path (symbolic links kept as named): the identity of a file."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def is_pattern(path: str) -> bool:
    return bool(_GLOB_CHARS.search(path)) and not os.path.exists(path)


def _skippable(name: str) -> bool:
    """Hidden files and README files in folders are not articles."""
    return name.startswith(".") or name.lower().startswith("readme.")


def describe_supported() -> str:
    """The accepted suffixes as one phrase, for messages and upload hints."""
    return ", ".join(sorted(SUPPORTED_SUFFIXES))


def _unsupported(suffix: str) -> str:
    return (f"unsupported file type {suffix or '(no extension)'!r}; "
            f"supported: {describe_supported()}")


class _Scan:
    """One expansion of the inputs: the files found, the skips, and the roots walked."""

    def __init__(self) -> None:
        self.files: dict[str, InputFile] = {}
        self.real_paths: set[str] = set()  # one entry per real file, however many links
        self.skips: list[Skip] = []
        self.roots: list[str] = []

    def add_input(self, raw: str | os.PathLike[str]) -> None:
        """One named input: a file, a folder, a glob pattern, or a mistake."""
        text = os.fspath(raw)
        if not text.strip():
            self.skips.append((text, "empty path"))
            return
        path = normalise_path(os.path.expanduser(text))
        if os.path.isdir(path):
            self.roots.append(path)
            self.walk(path, path)
        elif os.path.isfile(path):
            self.add_file(path, "", explicit=True)
        elif os.path.islink(path):
            self.skips.append((path, _link_reason(path)))
        elif is_pattern(text):
            self.add_pattern(text)
        else:
            self.skips.append((path, "no such file or folder"))

    def add_pattern(self, text: str) -> None:
        pattern = normalise_path(os.path.expanduser(text))
        self.roots.append(pattern)
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            self.skips.append((text, "no file matches this pattern"))
        for match in matches:
            match = normalise_path(match)
            if os.path.isdir(match):
                self.walk(match, pattern)
            else:
                self.add_file(match, pattern, explicit=False)

    def add_file(self, path: str, root: str, explicit: bool) -> None:
        name = os.path.basename(path)
        if not explicit and _skippable(name):
            return
        suffix = os.path.splitext(name)[1].lower()
        if suffix not in SUPPORTED_SUFFIXES:
            self.skips.append((path, _unsupported(suffix)))
            return
        try:
            st = os.stat(path)
        except OSError as exc:
            self.skips.append((path, _os_reason(path, exc)))
            return
        real = os.path.realpath(path)
        if path not in self.files and real not in self.real_paths:
            self.real_paths.add(real)
            self.files[path] = InputFile(path, st.st_mtime, st.st_size, root)

    def walk(self, folder: str, root: str) -> None:
        """Every article file under `folder`, following links without looping."""
        seen: set[str] = set()

        def on_error(exc: OSError) -> None:
            self.skips.append((normalise_path(exc.filename or folder),
                               _os_reason(exc.filename or folder, exc)))

        for current, dirnames, filenames in os.walk(folder, followlinks=True, onerror=on_error):
            real = os.path.realpath(current)
            if real in seen:
                self.skips.append((current,
                                   f"symbolic link loop: {current} leads back to {real}"))
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = self._subfolders(current, real, dirnames, seen)
            for name in sorted(filenames):
                full = normalise_path(os.path.join(current, name))
                if os.path.islink(full) and not os.path.exists(full):
                    if not _skippable(name):
                        self.skips.append((full, _link_reason(full)))
                    continue
                self.add_file(full, root, explicit=False)

    def _subfolders(self, current: str, real: str, names: list[str],
                    seen: set[str]) -> list[str]:
        """The subfolders to walk into: not hidden, not a link back up the tree."""
        keep = []
        for name in sorted(names):
            full = os.path.join(current, name)
            if name.startswith("."):
                continue
            target = os.path.realpath(full)
            if os.path.islink(full) and (target in seen or real.startswith(target + os.sep)
                                         or target == real):
                self.skips.append((normalise_path(full),
                                   f"symbolic link loop: {full} points back to {target}"))
                continue
            keep.append(name)
        return keep


def expand_inputs(paths: Iterable[str | os.PathLike[str]]
                  ) -> tuple[list[InputFile], list[Skip], list[str]]:
    """Files named by `paths` (files, folders, globs), skips, and the scanned roots.

    Roots are the folders and glob patterns that were walked: files that disappear from under
    a root are the ones pruning may remove. Unsupported files are skipped with a reason.
    """
    scan = _Scan()
    for raw in paths:
        scan.add_input(raw)
    return sorted(scan.files.values(), key=lambda f: f.path), scan.skips, scan.roots


def _link_reason(path: str) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link points back to itself)"
    return f"broken symbolic link (points to {os.readlink(path)!r}, which does not exist)"


def _os_reason(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (the link points back to itself)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"cannot read: {exc.strerror or exc}"


def under_root(path: str, root: str) -> bool:
    """Whether `path` belongs to a scanned root (a folder, or a glob pattern)."""
    if _GLOB_CHARS.search(root) and not os.path.isdir(root):
        from fnmatch import fnmatchcase

        return fnmatchcase(path, root) or fnmatchcase(path, os.path.join(root, "*")) or (
            "**" in root and fnmatchcase(path, root.replace("**" + os.sep, "")))
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


# --- reading files -------------------------------------------------------------------------

def iter_sources(paths: Iterable[str | os.PathLike[str]],
                 settings: Settings) -> Iterator[SourceResult]:
    """One SourceResult per input file (and one per input that could not even be listed)."""
    files, skips, _ = expand_inputs(paths)
    for path, reason in skips:
        yield SourceResult(path=path, errors=((path, reason),))
    for item in files:
        yield read_file(item.path, settings)


def read_file(path: str | os.PathLike[str], settings: Settings) -> SourceResult:
    """Parse one file into articles; never raises for bad input (see SourceResult.errors)."""
    name = normalise_path(path)
    try:
        st = os.stat(name)
    except OSError as exc:
        return SourceResult(name, errors=((name, _os_reason(name, exc)),))
    mtime, size = st.st_mtime, st.st_size
    try:
        articles, errors = _read(name, size, settings)
    except _Reject as exc:
        return SourceResult(name, errors=((name, exc.reason),), mtime=mtime, size=size)
    except OSError as exc:
        return SourceResult(name, errors=((name, _os_reason(name, exc)),), mtime=mtime,
                            size=size)
    if not articles and not errors:
        errors = [(name, "no articles found")]
    return SourceResult(name, tuple(articles), tuple(errors), mtime, size)


def _read(path: str, size: int, settings: Settings) -> tuple[list[Article], list[Skip]]:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise _Reject(_unsupported(suffix))
    if not os.path.isfile(path):
        raise _Reject("not a regular file")
    if size > settings.max_file_bytes:
        raise _Reject(f"file is {size / 1048576:.1f} MB, larger than the "
                      f"{settings.max_upload_mb} MB limit (max_upload_mb)")
    if size == 0:
        raise _Reject("empty file")
    with open(path, "rb") as handle:
        data = handle.read(settings.max_file_bytes + 1)
    if b"\x00" in data:
        raise _Reject("binary file (contains NUL bytes), not text")
    if suffix in FEED_SUFFIXES:
        return _read_feed(path, data)
    text = decode(data)
    if not text.strip():
        raise _Reject("file contains only white space")
    if suffix in TEXT_SUFFIXES:
        return [text_article(text, path, markdown=suffix != ".txt")], []
    if suffix in JSON_SUFFIXES:
        return _read_json(path, text, lines=suffix != ".json")
    return [_read_html(path, text)], []


def decode(data: bytes) -> str:
    """UTF-8 text (with or without a byte-order mark); anything else is rejected."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Reject(f"not UTF-8 text (undecodable byte 0x{data[exc.start]:02x} at offset "
                      f"{exc.start}); save the file as UTF-8") from None


# --- plain text and Markdown ---------------------------------------------------------------

def looks_like_headline(line: str) -> bool:
    """A short line without a terminal full stop: a title rather than a first sentence."""
    line = line.strip()
    if not line or len(line) > 200 or len(line.split()) > 30:
        return False
    return not line.endswith((".", ",", ";", ":")) or line.endswith("...")


def derive_title(body: str, words: int = _TITLE_WORDS) -> str:
    """A title made of the first words of the body (for text without a headline)."""
    parts = body.split()
    title = " ".join(parts[:words])
    return title + " …" if len(parts) > words else title


def text_article(text: str, path: str, *, markdown: bool = False) -> Article:
    """A text file: headline on the first line when there is one, else a derived title.

    Without a headline the body is the whole text verbatim, so offsets match the file.
    """
    first, newline, rest = text.partition("\n")
    candidate = first.strip()
    if markdown:
        candidate = candidate.lstrip("#").strip()
    if newline and rest.strip() and looks_like_headline(candidate):
        body = rest.strip("\n")
        return Article(title=candidate, body=body.rstrip(), path=path)
    return Article(title=derive_title(text), body=text, path=path)


# --- JSON and JSON Lines -------------------------------------------------------------------

def _read_json(path: str, text: str, *, lines: bool) -> tuple[list[Article], list[Skip]]:
    records: list[tuple[str, Any]] = []  # (label, value)
    errors: list[Skip] = []
    if not lines:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise _Reject(f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                              f"{exc.msg}") from None
            lines = True  # a .json file holding JSON Lines
        else:
            if isinstance(value, dict) and not any(k in value for k in _BODY_KEYS):
                for key in ("articles", "items", "data", "records"):
                    if isinstance(value.get(key), list):
                        value = value[key]
                        break
            if isinstance(value, list):
                if not value:
                    raise _Reject("JSON list is empty: no articles")
                records = [(f"item {i}", item) for i, item in enumerate(value)]
            elif isinstance(value, dict):
                records = [("", value)]
            else:
                raise _Reject(f"JSON must be an object or a list of objects, "
                              f"got {type(value).__name__}")
    if lines:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                errors.append((f"{path}#{number}",
                               f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})"))
    articles: list[Article] = []
    for label, record in records:
        anchor = label.split()[-1] if label else ""
        record_path = f"{path}#{anchor}" if anchor else path
        try:
            articles.append(record_article(record, path, anchor))
        except _Reject as exc:
            errors.append((record_path, f"{label}: {exc.reason}" if label else exc.reason))
    if not articles and errors and not lines and len(records) == 1:
        raise _Reject(errors[0][1])
    return articles, errors


def _text_field(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Reject(f"field {key!r} must be a string, got {type(value).__name__}")
    return value.strip()


def record_article(record: Any, path: str, anchor: str = "") -> Article:
    """One JSON object -> Article (title, body|text|content, source, author(s), date, url)."""
    if not isinstance(record, dict):
        raise _Reject(f"expected a JSON object, got {type(record).__name__}")
    for key, value in record.items():  # "\ud800" escapes decode to text nothing can encode
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and _SURROGATE.search(v) for v in texts):
            raise _Reject(f"field {key!r} holds invalid Unicode (an unpaired surrogate escape "
                          f"such as \\ud800); fix the text and index it again")
    body_key = next((k for k in _BODY_KEYS if record.get(k) is not None), None)
    if body_key is None:
        raise _Reject("no article text: expected a 'body', 'text' or 'content' field")
    body = record[body_key]
    if not isinstance(body, str):
        raise _Reject(f"field {body_key!r} must be a string, got {type(body).__name__}")
    if not body.strip():
        raise _Reject(f"field {body_key!r} is empty")
    author = ""
    for key in _AUTHOR_KEYS:
        value = record.get(key)
        if value is None or value == []:
            continue
        if isinstance(value, str):
            author = value.strip()
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            author = ", ".join(v.strip() for v in value if v.strip())
        else:
            raise _Reject(f"field {key!r} must be a string or a list of strings")
        break
    published, raw_date = "", ""
    for key in _DATE_KEYS:
        raw_date = _text_field(record, key)
        if raw_date:
            published = parse_date(raw_date)
            break
    title = _text_field(record, "title")
    url = _text_field(record, "url")
    metadata = {k: v for k, v in record.items() if k not in _KNOWN_KEYS}
    if raw_date and not published:
        metadata["published_raw"] = raw_date
    return Article(title=title or derive_title(body), body=body,
                   source=_text_field(record, "source"), author=author, published=published,
                   url=url,
                   path=f"{path}#{anchor}" if anchor and not url else path, metadata=metadata)


# --- HTML ----------------------------------------------------------------------------------

_PAGE_CHROME = ["//nav", "//footer", "//aside", "//header//ul", "//form"]


def _read_html(path: str, text: str) -> Article:
    import lxml.etree
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(text, with_metadata=True, include_comments=False,
                                          include_tables=True, prune_xpath=_PAGE_CHROME)
    except (lxml.etree.LxmlError, ValueError) as exc:  # lxml's errors on broken markup
        raise _Reject(f"cannot parse HTML: {exc}") from None
    data = doc.as_dict() if doc is not None and hasattr(doc, "as_dict") else (doc or {})
    body = (data.get("text") or "").strip()
    title = (data.get("title") or "").strip()
    if body and title:
        first, _, rest = body.partition("\n")
        if first.strip() == title and rest.strip():
            body = rest.strip()
    if not body:
        raise _Reject("no article text found in the HTML page")
    raw_date = data.get("date") or ""
    url = _web_url(data.get("url"))
    metadata = {k: data[k] for k in ("description", "categories", "tags", "hostname")
                if data.get(k)}
    return Article(title=title or derive_title(body), body=body,
                   source=(data.get("sitename") or "").strip(),
                   author=(data.get("author") or "").strip(),
                   published=parse_date(raw_date) if raw_date else "",
                   url=url, path=path, metadata=metadata)


# --- RSS and Atom --------------------------------------------------------------------------

_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                         "blockquote", "pre", "table", "tr", "section", "article", "figure"})


def html_to_text(fragment: str) -> str:
    """Text of an HTML fragment (feed content), paragraphs kept as blank lines."""
    if "<" not in fragment:
        import html

        return html.unescape(fragment).strip()
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.LxmlError, ValueError):  # not HTML after all
        return fragment.strip()
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    parts: list[str] = []

    def visit(element: Any) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if element.text and tag not in ("script", "style"):
            parts.append(element.text)
        for child in element:
            visit(child)
            if child.tail:
                parts.append(child.tail)
        if tag.lower() in _BLOCK_TAGS:
            parts.append("\n\n" if tag.lower() != "br" else "\n")

    visit(root)
    text = "".join(parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _web_url(value: Any) -> str:
    """An http(s) URL, or "" (feed ids such as urn:uuid are not links)."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else ""


def _feed_date(entry: Any) -> str:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime(*parsed[:6], tzinfo=UTC).isoformat()
            except (TypeError, ValueError):
                continue
    for key in ("published", "updated", "created"):
        if entry.get(key):
            return parse_date(str(entry[key]))
    return ""


def _read_feed(path: str, data: bytes) -> tuple[list[Article], list[Skip]]:
    import feedparser

    parsed = feedparser.parse(data)
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        raise _Reject("not an RSS or Atom feed" + (f" ({problem})" if problem else ""))
    if not parsed.entries:
        raise _Reject("feed has no entries")
    feed_title = str(parsed.feed.get("title") or "").strip()
    articles: list[Article] = []
    errors: list[Skip] = []
    for number, entry in enumerate(parsed.entries, start=1):
        url = _web_url(entry.get("link"))
        label = f"{path}#{number}"
        contents = [c.get("value", "") for c in entry.get("content") or [] if c.get("value")]
        raw = max(contents, key=len) if contents else str(entry.get("summary") or "")
        body = html_to_text(raw)
        if not body:
            errors.append((url or label, f"entry {number}: no text (no content or summary)"))
            continue
        author = str((entry.get("author_detail") or {}).get("name") or entry.get("author")
                     or "").strip()
        if not author and entry.get("authors"):
            author = ", ".join(str(a.get("name", "")).strip() for a in entry["authors"]
                               if a.get("name"))
        title = html_to_text(str(entry.get("title") or "")) or derive_title(body)
        metadata: dict[str, Any] = {}
        if entry.get("id"):
            metadata["entry_id"] = str(entry["id"])
        tags = [t.get("term") for t in entry.get("tags") or [] if t.get("term")]
        if tags:
            metadata["tags"] = tags
        articles.append(Article(title=title, body=body, source=feed_title, author=author,
                                published=_feed_date(entry), url=url,
                                path=path if url else label, metadata=metadata))
    return articles, errors
