"""Citation checking (no model needed): markers, quotes, the not-found fallback."""

from __future__ import annotations

import itertools

from qa.citations import check_answer, find_quotes
from qa.records import Citation
from qa.text import is_punctuated, segment, words
from tests.qa.helpers import seed_article, seed_passages


def test_markers_resolve_to_passages_and_are_renumbered() -> None:
    passages = seed_passages()
    answer = check_answer("q", "Conte sees no French plot [2]. Trenta rules out force [1].",
                          passages, answerer="llm")
    assert answer.found
    assert answer.text == "Conte sees no French plot [1]. Trenta rules out force [2]."
    assert [c.article.id for c in answer.citations] == [passages[1].article.id] * 2
    body = seed_article().body
    for citation in answer.citations:
        assert body[citation.start:citation.end] == citation.quote
    assert "France" in answer.citations[0].quote
    assert "intervention" in answer.citations[1].quote


def test_invalid_markers_are_removed_and_reported() -> None:
    answer = check_answer("q", "Trenta rules out force [1][4]. Something else [9, 1].",
                          seed_passages(), answerer="llm")
    assert answer.found
    assert "[4]" not in answer.text and "[9" not in answer.text
    assert answer.text.count("[1]") == 2
    assert any("[4]" in w for w in answer.warnings)
    assert any("[9]" in w for w in answer.warnings)


def test_no_valid_citation_becomes_not_found() -> None:
    answer = check_answer("q", "Italy will send troops [7].", seed_passages(), answerer="llm")
    assert not answer.found
    assert answer.citations == ()
    assert "do not cover" in answer.text
    assert any("[7]" in w for w in answer.warnings)
    assert not check_answer("q", "Italy will send troops.", seed_passages()).found


def test_quotes_must_occur_in_the_cited_passage() -> None:
    passages = seed_passages()
    good = check_answer("q", 'Trenta said “the option does  not exist” [1].', passages)
    assert good.found and good.warnings == ()
    straight = check_answer("q", "Trenta said \"I can say the option does not exist\" [1].",
                            passages)
    assert straight.warnings == ()
    invented = check_answer("q", 'Trenta said "we will send troops tomorrow" [1].', passages)
    assert invented.found
    assert any("unverified" in w and "no retrieved passage" in w for w in invented.warnings)
    misattributed = check_answer("q", 'Conte said "the option does not exist" [2].', passages)
    assert any("not in the passage it cites" in w for w in misattributed.warnings)


def test_extractive_citations_must_match_their_passage() -> None:
    passages = seed_passages()
    chunk = passages[0].chunk
    good = Citation(1, passages[0].article, chunk.text[:40], chunk.start, chunk.start + 40,
                    chunk.id)
    bad = Citation(2, passages[0].article, "invented words here", chunk.start,
                   chunk.start + 19, chunk.id)
    answer = check_answer("q", f"- “{good.quote}” [1]\n- “invented words here” [2]", passages,
                          citations=[good, bad])
    assert [c.number for c in answer.citations] == [1]
    assert "[2]" not in answer.text
    assert any("citation [2] removed" in w for w in answer.warnings)


def test_find_quotes_handles_both_styles_and_apostrophes() -> None:
    found = [q.text for q in find_quotes('He said "one two" and ‘three four’, '
                                         "it's Libya's 'five six'.")]
    assert found == ["one two", "three four", "five six"]


def test_segmentation_of_the_unpunctuated_seed() -> None:
    body = seed_article().body
    assert not is_punctuated(body)
    spans = segment(body)
    texts = [body[s:e] for s, e in spans]
    assert all(8 <= len(words(t)) <= 45 for t in texts)
    assert "Trenta also categorically dismissed the notion of armed intervention in Libya" in texts
    assert any(t.startswith("If anyone is thinking about military intervention") for t in texts)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_segmentation_of_punctuated_text() -> None:
    text = ("Netflix confirmed it. “Gi-hun returns,” Hwang wrote. The show, set in Seoul, "
            "was a hit.\n\nA new paragraph starts here and goes on for a while longer.")
    assert is_punctuated(text)
    pieces = [text[s:e] for s, e in segment(text)]
    assert pieces[-1] == "A new paragraph starts here and goes on for a while longer."
    assert any("“Gi-hun returns,” Hwang wrote." in p for p in pieces)
