"""The reader inside offline answers (qa.reading): the real model, the real store, the package
weights. Short questions lead with the short answer at its offsets, every quote is verbatim,
absent topics are refused with a confidence and see-also passages."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from index.records import ArticleMeta, Chunk, Quote
from index.settings import Settings
from qa.api import NewsQA
from qa.extractive import ScoredSpan
from qa.pipeline import Request
from qa.reader import WEIGHTS_DIR, Reader, SpanReading
from qa.reading import (
    ANSWER_WEIGHT,
    CLOSE_MARGIN,
    EXCERPTS_HEADING,
    EXTRACTIVE_WEIGHT,
    LEAD_WEIGHTS,
    MAX_CITATIONS,
    ReadingAnswerer,
    close_spans,
    lead_scores,
    most_named,
    read_spans,
    venue_fits,
    venue_span,
)
from qa.records import Answer

TRENTA_PAPER = "Which newspaper interviewed Trenta?"
ABSENT = "Who won the football world cup?"


def assert_verbatim(qa: NewsQA, answer: Answer) -> None:
    """Every citation quotes its article's body at its offsets; short answers lie inside."""
    for citation in answer.citations:
        article = qa.article(citation.article.id)
        assert article is not None
        assert article.body[citation.start:citation.end] == citation.quote
        if citation.answer_start is not None:
            assert citation.answer in citation.quote
            assert article.body[citation.answer_start:citation.answer_end] == citation.answer


def test_the_product_answers_through_the_package_reader(qa: NewsQA) -> None:
    assert isinstance(qa.reader, Reader) and qa.reader.folder == WEIGHTS_DIR
    assert qa.pipeline.answerer.name == "reader"


def test_short_question_leads_with_the_short_answer_at_its_offsets(qa: NewsQA) -> None:
    answer = qa.ask(TRENTA_PAPER)
    assert answer.found and answer.answerer == "reader", answer.text
    first = answer.citations[0]
    assert answer.short_answer and answer.short_answer == first.answer
    assert answer.text.splitlines()[0] == f"{answer.short_answer} [1]"
    assert answer.text.splitlines()[2] == EXCERPTS_HEADING
    body = qa.article(first.article.id).body  # type: ignore[union-attr]
    assert first.answer_start is not None and first.answer_end is not None
    assert body[first.answer_start:first.answer_end] == answer.short_answer
    assert first.start <= first.answer_start < first.answer_end <= first.end
    assert f"“{first.quote}” [1]" in answer.text
    assert all(c.answer_start is None for c in answer.citations[1:])
    assert 1 <= len(answer.citations) <= MAX_CITATIONS
    assert_verbatim(qa, answer)


def test_which_newspaper_interviewed_trenta_is_corriere_della_sera(qa: NewsQA) -> None:
    answer = qa.ask(TRENTA_PAPER)
    assert answer.text.splitlines()[0] == "Corriere della Sera [1]"
    first = answer.citations[0]
    assert "Corriere della Sera" in first.quote
    body = qa.article(first.article.id).body  # type: ignore[union-attr]
    assert body[first.answer_start:first.answer_end] == "Corriere della Sera"


def assert_leads_with_venue(qa: NewsQA, answer: Answer, venue: str) -> None:
    """The answer leads with `venue` [1], cited at its own offsets inside the first quote."""
    assert answer.found and answer.answerer == "reader", answer.text
    assert answer.text.splitlines()[0] == f"{venue} [1]", answer.text
    first = answer.citations[0]
    assert first.answer == answer.short_answer == venue and venue in first.quote
    body = qa.article(first.article.id).body  # type: ignore[union-attr]
    assert body[first.answer_start:first.answer_end] == venue  # type: ignore[misc]
    assert 1 <= len(answer.citations) <= MAX_CITATIONS
    assert_verbatim(qa, answer)


@pytest.mark.parametrize(("question", "venue"), [
    ("Which newspaper did Conte talk to?", "Il Fatto Quotidiano"),
    ("Where did Trenta say the evacuation plans are operational?", "Corriere della Sera"),
    ("Who did Mogherini tell?", "reporters"),
])
def test_venue_questions_lead_with_the_quote_indexs_venue(qa: NewsQA, question: str,
                                                          venue: str) -> None:
    assert_leads_with_venue(qa, qa.ask(question), venue)


def test_an_addressee_does_not_answer_which_newspaper(qa: NewsQA) -> None:
    question = "Which newspaper interviewed Mogherini?"  # she "told reporters": no outlet
    answer = qa.ask(question)
    assert answer.short_answer != "reporters"
    without_quotes = _reading_ask(qa, ReadingAnswerer(qa.extractive, qa.reader), question)
    assert answer.text == without_quotes.text  # today's reader answers


VENUE_ARTICLES = [
    {"title": "Ferry line to the islands opens in June", "source": "Coast Wire",
     "published": "2024-05-06",
     "body": "HARBOURTON (Coast Wire) - The new ferry line to the islands will open in June, "
             "the harbour authority said on Monday.\n\n\"The ferries will run every hour from "
             "the first of June,\" harbour minister Lena Vok told The Daily Planet. Port "
             "director Omar Reyes told reporters that the old pier would close for repairs."},
    {"title": "Lindenberg passes its budget", "source": "Coast Wire", "published": "2024-05-07",
     "body": "LINDENBERG (Coast Wire) - The city council passed its budget for next year on "
             "Tuesday after a long debate.\n\n\"We will not raise taxes this year,\" Mayor "
             "Tomas Brandt said in an interview with Radio Nova. Councillor Ines Faro told the "
             "Evening Star that the budget was fair to small businesses."},
]


@pytest.fixture(scope="module")
def venue_qa(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> NewsQA:
    """Two punctuated articles whose speakers talk to outlets (and to reporters)."""
    folder = tmp_path_factory.mktemp("venue-corpus")
    for number, article in enumerate(VENUE_ARTICLES):
        (folder / f"venue{number}.json").write_text(json.dumps(article), encoding="utf-8")
    engine = NewsQA(Settings(data_dir=tmp_path_factory.mktemp("venue-data"),
                             seeds_dir=folder), embedder=embedder)
    assert engine.add([folder]).indexed == len(VENUE_ARTICLES)
    return engine


@pytest.mark.parametrize(("question", "venue"), [
    ("Which newspaper interviewed Lena Vok?", "Daily Planet"),
    ("What newspaper did Vok talk to?", "Daily Planet"),  # a "what" question leads too
    ("Which radio station did Brandt speak to?", "Radio Nova"),
    ("Which paper did Ines Faro talk to?", "Evening Star"),
    ("Where did Brandt say he would not raise taxes?", "Radio Nova"),
    ("Who did Omar Reyes tell about the old pier?", "reporters"),
])
def test_venue_answers_on_punctuated_articles(venue_qa: NewsQA, question: str,
                                              venue: str) -> None:
    assert_leads_with_venue(venue_qa, venue_qa.ask(question), venue)


def test_no_outlet_quote_falls_back_to_the_reader(venue_qa: NewsQA) -> None:
    question = "Which newspaper interviewed Omar Reyes?"  # he told reporters only
    answer = venue_qa.ask(question)
    without_quotes = _reading_ask(venue_qa, ReadingAnswerer(venue_qa.extractive,
                                                            venue_qa.reader), question)
    assert answer.text == without_quotes.text
    assert answer.short_answer not in ("reporters", "Daily Planet", "Radio Nova")


def test_answers_carry_the_confidence_and_the_reader_weights(qa: NewsQA) -> None:
    answer = qa.ask(TRENTA_PAPER)
    assert qa.reader is not None
    assert answer.confidence is not None and 0.0 <= answer.confidence <= 1.0
    assert answer.reader == qa.reader.sha256 and len(answer.reader) == 64
    data = answer.to_dict()
    assert data["confidence"] == answer.confidence and data["reader"] == qa.reader.sha256
    assert data["short_answer"] == answer.short_answer != ""
    assert data["citations"][0]["answer"] == answer.short_answer
    assert data["citations"][0]["answer_start"] == answer.citations[0].answer_start


def test_absent_topic_is_refused_with_see_also_and_a_confidence(qa: NewsQA) -> None:
    answer = qa.ask(ABSENT)
    assert not answer.found and answer.citations == () and answer.answerer == "reader"
    assert "See also (closest passages" in answer.text
    assert answer.confidence is not None and 0.0 <= answer.confidence <= 1.0
    assert answer.reader == qa.reader.sha256  # type: ignore[union-attr]
    assert answer.to_dict()["short_answer"] == ""


class StrictReader:
    """The package reader with its refusal threshold set by the test (exact control)."""

    def __init__(self, reader: Reader, threshold: float) -> None:
        self.inner = reader
        self.threshold = threshold
        self.max_candidates = reader.max_candidates
        self.sha256 = reader.sha256

    def read(self, question: str, spans: Any) -> Any:
        return self.inner.read(question, spans)

    def short_answer(self, question: str, span: str, reading: Any) -> Any:
        return self.inner.short_answer(question, span, reading)

    def confidence(self, question: str, spans: Any, readings: Any) -> float:
        return self.inner.confidence(question, spans, readings)


def _reading_ask(qa: NewsQA, answerer: ReadingAnswerer, question: str) -> Answer:
    """`question` through the product's pipeline with `answerer` in the reader's place."""
    prepared = qa.pipeline.prepare(Request.make(question))
    analysis = answerer.analyse(prepared.standalone, prepared.passages,
                                query_embedding=prepared.embedding)
    return answerer.answer(prepared.standalone, prepared.passages,
                           query_embedding=prepared.embedding, analysis=analysis)


def test_low_confidence_is_refused_by_the_calibrated_threshold(qa: NewsQA) -> None:
    assert qa.reader is not None
    strict = ReadingAnswerer(qa.extractive, StrictReader(qa.reader, threshold=1.01),
                             refuse=True)
    refused = _reading_ask(qa, strict, TRENTA_PAPER)
    assert not refused.found and "enough confidence" in refused.text
    assert "See also (closest passages" in refused.text
    # the product's default (the quality floor's choice) does not refuse for confidence
    answered = _reading_ask(qa, ReadingAnswerer(qa.extractive, StrictReader(qa.reader, 1.01)),
                            TRENTA_PAPER)
    assert answered.found and answered.confidence == refused.confidence


def test_switches_for_the_ablation(qa: NewsQA) -> None:
    assert qa.reader is not None
    product = qa.pipeline.answerer
    assert isinstance(product, ReadingAnswerer) and product.quotes is not None
    plain = _reading_ask(qa, ReadingAnswerer(qa.extractive, qa.reader, short_answers=False,
                                             quotes=product.quotes), TRENTA_PAPER)
    assert plain.found and plain.text.splitlines()[0] == EXCERPTS_HEADING
    assert plain.short_answer == qa.ask(TRENTA_PAPER).short_answer != ""  # still marked
    ungated = _reading_ask(qa, ReadingAnswerer(qa.extractive, qa.reader, use_gate=False),
                           ABSENT)
    assert ungated.found  # neither the gate nor the threshold: the best span is quoted
    assert_verbatim(qa, ungated)
    with pytest.raises(ValueError):
        ReadingAnswerer(qa.extractive, qa.reader, max_citations=MAX_CITATIONS + 1)


def test_general_question_quotes_without_a_lead(qa: NewsQA) -> None:
    answer = qa.ask("Why is Conte concerned about the conflict in Libya?")
    assert answer.found and answer.answerer == "reader", answer.text
    assert answer.text.splitlines()[0] == EXCERPTS_HEADING
    assert_verbatim(qa, answer)


def test_what_did_x_say_keeps_quoting_x(qa: NewsQA) -> None:
    answer = qa.ask("What did Trenta say about intervention?")
    assert answer.found and answer.answerer == "quotes"
    assert "the option does not exist" in answer.text


def test_stream_ends_with_the_same_answer_as_ask(qa: NewsQA) -> None:
    pieces = list(qa.stream(TRENTA_PAPER))
    final = pieces[-1]
    assert isinstance(final, Answer) and final == qa.ask(TRENTA_PAPER)
    assert "".join(p for p in pieces[:-1] if isinstance(p, str)) == final.text
    assert final.confidence == qa.ask(TRENTA_PAPER).confidence


def test_reader_setting_off_gives_the_extractive_answerer(qa: NewsQA,
                                                          qa_settings: Settings) -> None:
    off = NewsQA(replace(qa_settings, reader=False), embedder=qa.embedder, store=qa.store)
    assert off.reader is None
    answer = off.ask(TRENTA_PAPER)
    assert answer.answerer == "extractive" and answer.confidence is None
    assert answer.reader == "" and answer.short_answer == ""


class FixedReader:
    """A reader whose readings the test sets (exact control of the ranking's inputs)."""

    max_candidates = 16
    threshold = 0.5
    sha256 = "0" * 64

    def __init__(self, readings: list[SpanReading]) -> None:
        self.readings = readings

    def read(self, question: str, spans: Any) -> list[SpanReading]:
        return self.readings

    def short_answer(self, question: str, span: str, reading: SpanReading) -> SpanReading:
        return reading

    def confidence(self, question: str, spans: Any, readings: Any) -> float:
        return 0.5


def _candidate(text: str, start: int, extractive: float) -> ScoredSpan:
    article = ArticleMeta(id="a1", title="T")
    chunk = Chunk("a1", 0, 0, 200, "x" * 200)
    return ScoredSpan(article, chunk, start, start + len(text), text, extractive, 0.0, 0.0,
                      0.0, 0.0, 0.0)


def test_the_ranking_adds_the_short_answer_heads_score() -> None:
    candidates = [_candidate("Officials met on Monday.", 0, 0.5),
                  _candidate("Maria Rossi won the prize.", 40, 0.5)]
    reader = FixedReader([SpanReading(2.0, 0, 9, 1.0), SpanReading(1.0, 0, 11, 9.0)])
    plain = read_spans(reader, "Who won?", candidates, extractive_weight=EXTRACTIVE_WEIGHT)
    assert plain.spans[0].span.text == "Officials met on Monday."
    ranked = read_spans(reader, "Who won?", candidates, extractive_weight=EXTRACTIVE_WEIGHT,
                        answer_weight=ANSWER_WEIGHT)
    assert ranked.spans[0].span.text == "Maria Rossi won the prize."
    assert ranked.spans[0].score == pytest.approx(1.0 + 8.0 * 0.5 + 0.5 * 9.0)


def test_the_lead_span_is_the_best_by_the_standardised_scores() -> None:
    candidates = [_candidate("Officials met on Monday.", 0, 0.5),
                  _candidate("Maria Rossi won the prize.", 40, 0.9),
                  _candidate("The weather was mild.", 80, 0.1)]
    reader = FixedReader([SpanReading(10.0, 0, 9, 1.0), SpanReading(2.0, 0, 11, 2.0),
                          SpanReading(0.0, 0, 3, 0.0)])
    weights = {"extractive_weight": EXTRACTIVE_WEIGHT, "answer_weight": ANSWER_WEIGHT}
    plain = read_spans(reader, "Who won?", candidates, **weights)
    assert [s.span.start for s in plain.spans] == [0, 40, 80]  # 14.5, 10.2, 0.8
    led = read_spans(reader, "Who won?", candidates, **weights, lead_weights=LEAD_WEIGHTS)
    assert [s.span.start for s in led.spans] == [40, 0, 80]  # the lead, then the rest
    assert [s.score for s in led.spans] == [s.score for s in
                                            sorted(plain.spans, key=lambda s: s.span.start != 40)]
    scores = lead_scores(reader.readings, candidates, *LEAD_WEIGHTS)
    assert int(np.argmax(scores)) == 1 and scores.sum() == pytest.approx(0.0)
    # the quoted spans: the lead, and the others within the margin of the best ranking score
    assert [s.span.start for s in close_spans(led, margin=CLOSE_MARGIN)] == [40, 0]
    assert [s.span.start for s in close_spans(plain, margin=CLOSE_MARGIN)] == [0]


class AnsweringReader(FixedReader):
    """A FixedReader whose answerer finds "Maria Rossi" in whichever span it is given."""

    def __init__(self, readings: list[SpanReading]) -> None:
        super().__init__(readings)
        self.asked: list[str] = []

    def short_answer(self, question: str, span: str, reading: SpanReading) -> SpanReading:
        self.asked.append(span)
        start = span.find("Maria Rossi")
        return replace(reading, answer_start=start, answer_end=start + len("Maria Rossi"))


def test_the_lead_spans_short_answer_comes_from_the_answerer_and_only_the_lead_is_read() -> None:
    candidates = [_candidate("Officials met on Monday.", 0, 0.5),
                  _candidate("Judges said Maria Rossi won.", 40, 0.9)]
    reader = AnsweringReader([SpanReading(1.0, 0, 9, 1.0), SpanReading(2.0, 0, 6, 2.0)])
    reading = read_spans(reader, "Who won?", candidates, extractive_weight=EXTRACTIVE_WEIGHT,
                         lead_weights=LEAD_WEIGHTS)
    lead, other = reading.spans
    assert reader.asked == ["Judges said Maria Rossi won."]
    assert (lead.answer_start, lead.answer_end) == (40 + 12, 40 + 23)  # body offsets
    assert (other.answer_start, other.answer_end) == (0, 9)  # the ranker's, unrefined


def test_the_product_ranks_with_the_short_answer_term(qa: NewsQA) -> None:
    answerer = qa.pipeline.answerer
    assert isinstance(answerer, ReadingAnswerer)
    assert answerer.answer_weight == ANSWER_WEIGHT == 0.5
    assert answerer.extractive_weight == EXTRACTIVE_WEIGHT
    assert answerer.lead_weights == LEAD_WEIGHTS == (3.0, 0.5)


def _venue_quote(venue: str, start: int, *, content: tuple[int, int] = (0, 10)) -> Quote:
    return Quote(article_id="a1", content_spans=(content,), content="x" * (content[1] - content[0]),
                 speaker="X", venue=venue, venue_span=(start, start + len(venue)))


def test_an_outlet_venue_is_a_name_or_an_outlet_noun() -> None:
    assert venue_fits("Corriere della Sera", outlet=True)
    assert venue_fits("state television", outlet=True)
    assert venue_fits("two local newspapers", outlet=True)
    assert not venue_fits("reporters", outlet=True)
    assert venue_fits("reporters", outlet=False) and not venue_fits(" ", outlet=False)


def test_the_most_named_venue_counts_a_short_form_for_its_fuller_one() -> None:
    quotes = [_venue_quote("Radio Nova", 20), _venue_quote("Corriere", 40),
              _venue_quote("Radio Nova", 60), _venue_quote("the Corriere della Sera", 80),
              _venue_quote("Corriere", 120)]
    assert most_named(quotes) is quotes[3]  # "Corriere" x2 + the full form: 3 > 2
    assert most_named(quotes[:3]) is quotes[0]
    assert most_named([]) is None


def test_the_venue_span_without_a_candidate_is_the_quotes_words_inside_its_chunk() -> None:
    body = "Intro. Vok told The Daily Planet that ferries run hourly. Next part of the text."
    chunk = Chunk("a1", 0, 0, len(body), body)
    start = body.index("Daily Planet")
    quote = Quote(article_id="a1", content_spans=((body.index("that"), body.index(" Next") - 1),),
                  content=body[body.index("that"):body.index(" Next") - 1], speaker="Vok",
                  speaker_span=(7, 10), cue="told", cue_span=(11, 15), venue="Daily Planet",
                  venue_span=(start, start + len("Daily Planet")))
    span = venue_span(quote, [], ArticleMeta(id="a1", title="T"), lambda: [chunk])
    assert span is not None and span.text == "Vok told The Daily Planet that ferries run hourly"
    assert body[span.start:span.end] == span.text and span.chunk is chunk
    held = _candidate(body[7:body.index(" Next")], 7, 0.5)
    assert venue_span(quote, [held], ArticleMeta(id="a1"), lambda: []) is held
