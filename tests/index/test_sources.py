"""Reading inputs: every supported format, and one clear skip reason for each bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from index.dates import parse_date
from index.settings import Settings
from index.sources import expand_inputs, iter_sources, read_file
from index.text import normalise_text
from tests.conftest import SEED_ARTICLE

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Harbour Wire</title><link>https://example.com</link>
<description>News</description>
<item><title>Port strike ends</title><link>https://example.com/strike</link>
<pubDate>Tue, 05 Mar 2024 10:00:00 GMT</pubDate><author>ann@example.com (Ann Lee)</author>
<description>&lt;p&gt;Dock workers returned on Tuesday.&lt;/p&gt;&lt;p&gt;The union said pay
rose.&lt;/p&gt;</description></item>
<item><title>No text</title><link>https://example.com/empty</link></item>
</channel></rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom News</title><id>urn:feed</id>
<updated>2024-03-06T00:00:00Z</updated>
<entry><title>Bridge opens</title><id>urn:1</id><link href="https://example.org/bridge"/>
<updated>2024-03-06T09:30:00Z</updated><author><name>Bo Chen</name></author>
<summary>Short summary.</summary>
<content type="html">&lt;p&gt;The new bridge opened to traffic on Wednesday.&lt;/p&gt;
&lt;p&gt;It cost 40 million.&lt;/p&gt;</content></entry></feed>
"""

HTML = """<html><head><title>Mayor backs bridge - Daily Planet</title>
<meta name="author" content="Jane Doe">
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
<meta property="og:site_name" content="Daily Planet">
<meta property="og:title" content="Mayor backs bridge"></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Mayor backs bridge</h1>
<p>The mayor announced on Tuesday that the city would build a new bridge over the river.</p>
<p>Construction starts next year and should take three years, officials said.</p></article>
<footer>Copyright Daily Planet</footer></body></html>
"""


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def only_article(path: Path, settings: Settings):
    result = read_file(path, settings)
    assert result.errors == ()
    assert len(result.articles) == 1
    return result.articles[0]


def test_seed_text_without_headline_keeps_body_verbatim(settings: Settings) -> None:
    article = only_article(SEED_ARTICLE, settings)
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    assert article.body == text
    assert article.title.startswith("ROME April Xinhua Italian Prime Minister")
    assert article.path == str(SEED_ARTICLE) and article.key == str(SEED_ARTICLE)
    assert article.published == "" and article.source == ""


def test_text_with_headline(tmp_path: Path, settings: Settings) -> None:
    path = write(tmp_path, "story.txt", "Port strike ends after ten days\n\nDock workers "
                                         "returned to work on Tuesday.\nPay rose.\n")
    article = only_article(path, settings)
    assert article.title == "Port strike ends after ten days"
    assert article.body == "Dock workers returned to work on Tuesday.\nPay rose."


def test_text_whose_first_line_is_a_sentence_gets_a_derived_title(tmp_path: Path,
                                                                    settings: Settings) -> None:
    text = "The council met on Monday.\nIt voted to close the library.\n"
    article = only_article(write(tmp_path, "s.txt", text), settings)
    assert article.body == text
    assert article.title.startswith("The council met on Monday.")


def test_markdown_heading_is_the_title(tmp_path: Path, settings: Settings) -> None:
    article = only_article(write(tmp_path, "m.md", "# Storm hits coast\n\nWinds reached "
                                                  "150 km/h overnight.\n"), settings)
    assert article.title == "Storm hits coast"
    assert article.body == "Winds reached 150 km/h overnight."


def test_json_object_and_list(tmp_path: Path, settings: Settings) -> None:
    one = write(tmp_path, "one.json", json.dumps({
        "title": "Budget passes", "text": "Parliament passed the budget.", "source": "Wire",
        "authors": ["A. Smith", "B. Jones"], "published_at": "March 5, 2024",
        "url": "https://example.com/budget", "section": "politics"}))
    article = only_article(one, settings)
    assert (article.title, article.body, article.source, article.author, article.published,
            article.url) == ("Budget passes", "Parliament passed the budget.", "Wire",
                             "A. Smith, B. Jones", "2024-03-05", "https://example.com/budget")
    assert article.key == "https://example.com/budget"
    assert article.metadata["section"] == "politics"

    many = write(tmp_path, "many.json", json.dumps([
        {"title": "First", "content": "First body."}, {"body": "Second body.", "date": ""}]))
    result = read_file(many, settings)
    assert result.errors == ()
    assert [a.path for a in result.articles] == [f"{many}#0", f"{many}#1"]
    assert result.articles[1].title == "Second body." and result.articles[1].published == ""


def test_jsonl_keeps_good_lines_and_reports_bad_ones(tmp_path: Path, settings: Settings) -> None:
    path = write(tmp_path, "feed.jsonl", "\n".join([
        json.dumps({"title": "A", "body": "Alpha story."}),
        "{not json",
        json.dumps({"title": "B", "body": 42}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"title": "C", "body": "Gamma story.", "url": "https://example.com/c"}),
    ]) + "\n")
    result = read_file(path, settings)
    assert [a.title for a in result.articles] == ["A", "C"]
    assert result.articles[0].path == f"{path}#1"
    assert result.articles[1].key == "https://example.com/c"
    reasons = [reason for _, reason in result.errors]
    assert len(reasons) == 3
    assert reasons[0].startswith("line 2: invalid JSON")
    assert reasons[1] == "line 3: field 'body' must be a string, got int"
    assert reasons[2].startswith("line 4: expected a JSON object")


def test_html_main_text_and_metadata(tmp_path: Path, settings: Settings) -> None:
    article = only_article(write(tmp_path, "page.html", HTML), settings)
    assert article.title == "Mayor backs bridge"
    assert "build a new bridge" in article.body and "Construction starts" in article.body
    assert "Home" not in article.body and "Copyright" not in article.body
    assert article.author == "Jane Doe" and article.source == "Daily Planet"
    assert article.published.startswith("2024-03-05")


def test_rss_entries(tmp_path: Path, settings: Settings) -> None:
    result = read_file(write(tmp_path, "wire.rss", RSS), settings)
    [article] = result.articles
    assert article.title == "Port strike ends"
    assert article.body == "Dock workers returned on Tuesday.\n\nThe union said pay\nrose."
    assert (article.source, article.author, article.url) == (
        "Harbour Wire", "Ann Lee", "https://example.com/strike")
    assert article.published == "2024-03-05T10:00:00+00:00"
    assert result.errors == (("https://example.com/empty",
                              "entry 2: no text (no content or summary)"),)


def test_atom_prefers_full_content(tmp_path: Path, settings: Settings) -> None:
    article = only_article(write(tmp_path, "news.atom", ATOM), settings)
    assert article.body == "The new bridge opened to traffic on Wednesday.\n\nIt cost 40 million."
    assert (article.title, article.author, article.source) == ("Bridge opens", "Bo Chen",
                                                                "Atom News")
    assert article.url == "https://example.org/bridge"
    assert article.published == "2024-03-06T09:30:00+00:00"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b"  \n\t\n", "file contains only white space"),
    ("nul.txt", b"abc\x00def", "binary file (contains NUL bytes), not text"),
    ("latin1.txt", "café".encode("latin-1"), "not UTF-8 text"),
    ("broken.json", b'{"title": "x", ', "invalid JSON at line 1"),
    ("wrong.json", b'{"title": "x", "body": 12}', "field 'body' must be a string, got int"),
    ("nobody.json", b'{"title": "x"}', "no article text"),
    ("chrome.html", b"<html><body><nav>Home</nav><footer>(c)</footer></body></html>",
     "no article text found in the HTML page"),
    ("none.rss", b'<rss version="2.0"><channel><title>x</title></channel></rss>',
     "feed has no entries"),
    ("plain.xml", b"<note><to>Tove</to></note>", "not an RSS or Atom feed"),
    ("scan.pdf", b"%PDF-1.4", "unsupported file type '.pdf'"),
])
def test_bad_input_gives_one_clear_reason(tmp_path: Path, settings: Settings, name: str,
                                          content: bytes, reason: str) -> None:
    path = write(tmp_path, name, content)
    result = read_file(path, settings)
    assert result.articles == ()
    assert len(result.errors) == 1
    assert result.errors[0][0] == str(path)
    assert result.errors[0][1].startswith(reason), result.errors


def test_utf8_with_bom_is_accepted(tmp_path: Path, settings: Settings) -> None:
    article = only_article(write(tmp_path, "bom.txt", b"\xef\xbb\xbfHeadline\n\nBody text."),
                           settings)
    assert article.title == "Headline" and article.body == "Body text."


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    small = Settings(data_dir=tmp_path / "d", max_upload_mb=1)
    path = write(tmp_path, "big.txt", "word " * 220_000)
    [(where, reason)] = read_file(path, small).errors
    assert where == str(path) and "larger than the 1 MB limit" in reason


def test_folder_glob_links_and_skips(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "news"
    write(root, "a.txt", "Alpha\n\nAlpha body.")
    write(root, "deep/b.md", "Beta\n\nBeta body.")
    write(root, ".hidden.txt", "Hidden\n\nNot indexed.")
    write(root, "README.md", "# About this folder")
    write(root, "notes.docx", b"PK")
    os.symlink(root, root / "deep" / "loop")          # directory loop
    os.symlink("self", root / "self")                  # file link to itself
    os.symlink("missing.txt", root / "dangling.txt")   # broken link
    files, skips, roots = expand_inputs([root])
    assert [Path(f.path).name for f in files] == ["a.txt", "b.md"]
    assert roots == [str(root)]
    reasons = {Path(p).name: r for p, r in skips}
    assert reasons["notes.docx"].startswith("unsupported file type '.docx'")
    assert "symbolic link loop" in reasons["loop"]
    assert "symbolic link loop" in reasons["self"]
    assert reasons["dangling.txt"].startswith("broken symbolic link")

    results = list(iter_sources([str(root / "**" / "*.md"), root / "nothing-here"], settings))
    assert [a.title for r in results for a in r.articles] == ["Beta"]
    assert any(r.errors and r.errors[0][1] == "no such file or folder" for r in results)


def test_same_text_under_two_names_has_one_id(tmp_path: Path, settings: Settings) -> None:
    a = only_article(write(tmp_path, "a.txt", "Same story\n\nThe same words here."), settings)
    b = only_article(write(tmp_path, "b.txt", "Same story\n\nThe  same words\nhere."), settings)
    assert normalise_text(a.body) == normalise_text(b.body)
    assert a.id == b.id and a.key != b.key


@pytest.mark.parametrize(("raw", "iso"), [
    ("2022-06-12", "2022-06-12"),
    ("2022-06-12T08:30:00Z", "2022-06-12T08:30:00+00:00"),
    ("June 12, 2022", "2022-06-12"),
    ("12 June 2022 08:30", "2022-06-12T08:30:00"),
    ("not a date", ""),
    ("", ""),
])
def test_parse_date(raw: str, iso: str) -> None:
    assert parse_date(raw) == iso
