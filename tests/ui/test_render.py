"""Pure rendering: escaping, highlighting, citation links, safe URLs, report tables."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from index.build import summary_line
from index.records import Article, Chunk
from qa.records import Answer, Citation, Passage
from ui import render

EVIL = ('Officials said <script>window.__pwned=1</script> and <img src=x onerror="alert(1)"> '
        "then the minister said the option does not exist for now")


def _answer(found: bool = True, url: str = "https://example.org/story?a=1&b=2") -> tuple:
    article = Article(title="Minister <b>rules out</b> intervention", body=EVIL,
                      source="Xinhua & Co", published="2019-05-12", url=url)
    start = EVIL.index("the option does not exist")
    end = start + len("the option does not exist")
    chunk = Chunk(article_id=article.id, ordinal=0, start=0, end=len(EVIL), text=EVIL)
    passage = Passage(chunk=chunk, article=article.meta, score=0.9)
    citations = (Citation(number=1, article=article.meta, quote=EVIL[start:end], start=start,
                          end=end, chunk_id=chunk.id),) if found else ()
    text = ("The minister said the option does not exist [1]; an aide hinted otherwise [7]."
            if found else "No answer <here>.")
    answer = Answer(question="What about <script>x</script>?", text=text, found=found,
                    citations=citations, passages=(passage,))
    return answer, article


def test_highlight_escapes_and_marks_spans() -> None:
    out = render.highlight("a <b> c d", [(4, 5), (2, 5), (8, 9)])
    assert out == "a <mark>&lt;b&gt;</mark> c <mark>d</mark>"
    assert render.highlight("abc", [(5, 9), (2, 1)]) == "abc"


@pytest.mark.parametrize("url,ok", [
    ("https://example.org/x", True), ("http://a.b", True), ("javascript:alert(1)", False),
    ("JaVaScRiPt:alert(1)", False), ("data:text/html,<script>", False), ("//evil.org", False),
    ("ftp://x.org/f", False), ("https://", False), ("", False), ("https://a.org/\nx", False),
])
def test_safe_url_allows_only_http(url: str, ok: bool) -> None:
    assert bool(render.safe_url(url)) is ok


def test_sources_panel_escapes_article_text_and_links_safely() -> None:
    answer, article = _answer()
    out = render.render_sources_html(answer, {article.id: article}, turn=3)
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in out
    assert 'id="nq-src-3-1"' in out
    assert "<mark>the option does not exist</mark>" in out
    assert 'href="https://example.org/story?a=1&amp;b=2"' in out
    assert 'rel="noopener noreferrer nofollow"' in out
    assert "Xinhua &amp; Co" in out and "2019-05-12" in out
    assert "<details" in out  # the full article can be opened
    assert out.count("<mark>") == 2  # the passage and the full body


def _short_answer_citation() -> tuple[Answer, Article]:
    """The fixture's answer whose quote holds a short answer made of markup."""
    answer, article = _answer()
    start = EVIL.index("<script>")
    end = EVIL.index(" and <img")
    short = EVIL.index("window.__pwned=1")
    citation = Citation(number=1, article=article.meta, quote=EVIL[start:end], start=start,
                        end=end, chunk_id=answer.citations[0].chunk_id, answer_start=short,
                        answer_end=short + len("window.__pwned=1"))
    return replace(answer, citations=(citation,)), article


def test_short_answer_is_marked_inside_its_quote_and_escaped() -> None:
    answer, article = _short_answer_citation()
    for bodies in ({article.id: article}, {}):
        out = render.render_sources_html(answer, bodies, turn=1)
        assert ('<mark>&lt;script&gt;<mark class="nq-short"><strong>window.__pwned=1</strong>'
                "</mark>&lt;/script&gt;</mark>") in out
        assert "<script" not in out
    bare = render.render_citation_card(answer.citations[0], 0)  # no passage, no body
    assert '<mark class="nq-short"><strong>window.__pwned=1</strong></mark>' in bare
    plain, _ = _answer()
    assert "nq-short" not in render.render_sources_html(plain, {article.id: article})


def test_cli_quote_puts_the_short_answer_in_bold() -> None:
    answer, _ = _short_answer_citation()
    citation = answer.citations[0]
    assert render.cli_quote(citation, tty=False) == "<script>**window.__pwned=1**</script>"
    assert render.cli_quote(citation, tty=True) == (
        "<script>\x1b[1mwindow.__pwned=1\x1b[0m</script>")
    plain, _ = _answer()
    assert render.cli_quote(plain.citations[0], tty=True) == "the option does not exist"


def test_unsafe_url_is_not_a_link() -> None:
    answer, article = _answer(url="javascript:alert(1)")
    out = render.render_sources_html(answer, {article.id: article})
    assert "javascript:" not in out and "<a " not in out


def test_answer_links_markers_to_cards_and_escapes() -> None:
    answer, _ = _answer()
    out = render.render_answer_html(answer, turn=2)
    assert '<a class="nq-cite" href="#nq-src-2-1"' in out
    # the fixture's [7] names no citation: shown as written, never a link to a missing card
    assert "an aide hinted otherwise [7]." in out
    assert "nq-src-2-7" not in out and out.count('class="nq-cite"') == 1
    unknown = render.link_markers("see [7] and <i>", [1], 0)
    assert unknown == "see [7] and &lt;i&gt;"


def test_grouped_markers_link_each_known_number() -> None:
    out = render.link_markers("both [1, 2] and [2; 9] but not [8, 9]", [1, 2], 4)
    links = re.findall(r'<a class="nq-cite" href="#(nq-src-4-\d+)"[^>]*>(\[\d+\])</a>', out)
    assert links == [("nq-src-4-1", "[1]"), ("nq-src-4-2", "[2]"), ("nq-src-4-2", "[2]")]
    assert out.endswith("</a>[9] but not [8, 9]")


def test_not_found_answer_is_distinct_and_lists_closest_passages() -> None:
    answer, article = _answer(found=False)
    chat = render.render_answer_html(answer)
    assert "nq-notfound" in chat and "Not found" in chat
    assert "No answer &lt;here&gt;." in chat
    assert "Minister &lt;b&gt;rules out&lt;/b&gt; intervention" in chat
    panel = render.render_sources_html(answer, {article.id: article})
    assert "Closest passages" in panel and "nq-seealso" in panel
    assert "<script" not in panel


def test_article_view_highlights_span() -> None:
    _, article = _answer()
    out = render.render_article_html(article, [(0, 9)])
    assert out.count("<mark>Officials</mark>") == 1
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out


def test_report_rows_results_and_summary() -> None:
    report = {"indexed": 2, "updated": 0, "unchanged": 1, "skipped": 1, "duplicates": 1,
              "chunks_added": 7,
              "errors": [{"path": "/d/uploads/c.json", "reason": "record 3: no body"}]}
    assert render.report_rows(report, {"c.json": "My C.json"}) == [
        ["My C.json", "skipped", "record 3: no body"]]
    assert summary_line(report) == "2 indexed, 1 unchanged, 1 duplicates, 1 skipped"
    result, detail = render.file_result(report)
    assert result == "indexed" and detail.startswith("2 articles, 7 passages")
    assert "record 3: no body" in detail
    assert render.file_result({"unchanged": 1}) == ("unchanged",
                                                    "already indexed with the same text")
    assert render.file_result({"skipped": 1, "errors": [{"path": "x", "reason": "binary"}]}) \
        == ("skipped", "binary")
    assert summary_line({}) == "nothing to do"


def test_filters_are_described_in_the_sources_panel() -> None:
    assert render.describe_filters() == ""
    note = render.describe_filters(["Xinhua", "AP"], "2019-01-01", None)
    assert note == "only Xinhua, AP; dated 2019-01-01 or later"
    answer, article = _answer()
    out = render.render_sources_html(answer, {article.id: article}, filters="only <AP>")
    assert "Filters: only &lt;AP&gt;" in out


def test_see_also_keeps_one_passage_per_uncited_article() -> None:
    answer, article = _answer()
    other = Article(title="Other", body="Another story entirely about harbours.")
    chunks = [Chunk(article_id=other.id, ordinal=i, start=0, end=7, text=other.body[:7])
              for i in range(2)]
    extra = tuple(Passage(chunk=c, article=other.meta, score=0.1) for c in chunks)
    answer = Answer(question=answer.question, text=answer.text, found=True,
                    citations=answer.citations, passages=answer.passages + extra)
    out = render.render_sources_html(answer, {article.id: article})
    assert out.count("nq-seealso\"") == 1 and "See also" in out
