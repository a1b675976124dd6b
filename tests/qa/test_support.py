"""The per-sentence support check of LLM answers, with the real bundled embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.records import Article
from qa.eval.llm_check import load_cases, score
from qa.records import Passage
from qa.sentences import (
    SentenceBuffer,
    SentenceCheck,
    on_topic,
    split_sentences,
    with_marker,
)
from qa.support import (
    INVENTED_QUOTE,
    NAME_OR_NUMBER,
    UNSUPPORTED,
    SupportChecker,
    negation_conflict,
    sentence_names,
    sentence_speakers,
)
from tests.qa.conftest import EXTRA_ARTICLES
from tests.qa.helpers import passage_of, seed_article, seed_passages

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "llm_check_cases.jsonl"


@pytest.fixture(scope="module")
def checker(embedder) -> SupportChecker:  # type: ignore[no-untyped-def]
    return SupportChecker(embedder)


def trenta() -> list[Passage]:
    return seed_passages()[:1]


def capital_and_france() -> Passage:
    """A seed passage that holds both "capital" and "France" (but not Paris)."""
    article = seed_article()
    passage = passage_of(article, "attempting to take over", after=1400)
    assert "capital" in passage.chunk.text and "France" in passage.chunk.text
    return passage


def eu_passage() -> Passage:
    """The EU article: it names France and Paris, and says nothing about capitals."""
    data = EXTRA_ARTICLES[0]
    article = Article(title=data["title"], body=data["body"], source=data["source"],
                      published=data["published"])
    return passage_of(article, "BRUSSELS", after=len(article.body))


def test_outside_knowledge_is_not_supported(checker: SupportChecker) -> None:
    seed = checker.judge("The capital of France is Paris", [capital_and_france()])
    assert not seed.supported and seed.reason == NAME_OR_NUMBER and "Paris" in seed.detail
    eu = checker.judge("The capital of France is Paris", [eu_passage()])
    assert not eu.supported and eu.reason == UNSUPPORTED


def test_swapped_speaker_is_not_supported(checker: SupportChecker) -> None:
    assert sentence_speakers("Conte said the option does not exist") == {"conte"}
    swapped = checker.judge("Conte said the option does not exist", trenta())
    assert not swapped.supported and swapped.reason == UNSUPPORTED
    assert "attributes these words to Trenta" in swapped.detail
    salvini = checker.judge("Salvini said there is no need to act tough",
                            [passage_of(seed_article(), "With regards to Salvini", after=260)])
    assert not salvini.supported and "Trenta" in salvini.detail


def test_flipped_negation_is_not_supported(checker: SupportChecker) -> None:
    for sentence in ("Trenta said the option does exist",
                     "Trenta did not dismiss the notion of armed intervention in Libya",
                     "Trenta said Italy will back an intervention by other countries"):
        verdict = checker.judge(sentence, trenta())
        assert not verdict.supported, sentence
        assert verdict.reason in (UNSUPPORTED, NAME_OR_NUMBER), sentence
    assert "negation" in checker.judge("Trenta said the option does exist", trenta()).detail
    assert negation_conflict("the option does exist", "the option does not exist")
    assert negation_conflict("Trenta never dismissed it", "Trenta dismissed it")
    assert not negation_conflict("the option does not exist", "the option does not exist")


def test_verbatim_and_paraphrased_sentences_are_supported(checker: SupportChecker) -> None:
    for sentence in ("Trenta also categorically dismissed the notion of armed intervention in "
                     "Libya",
                     "Trenta ruled out an armed intervention in Libya",
                     "Trenta said the option of military intervention in Libya does not exist",
                     'Trenta said "the option does not exist"'):
        verdict = checker.judge(sentence, trenta())
        assert verdict.supported, (sentence, verdict.detail)
    merkel = passage_of(seed_article(), "Conte said he has spoken with German", after=260)
    assert checker.judge("Conte said Merkel is also very concerned", [merkel]).supported


def test_names_and_numbers_must_be_in_the_cited_passage(checker: SupportChecker) -> None:
    assert sentence_names("Macron met Haftar in Benghazi") == ["Macron", "Haftar", "Benghazi"]
    haftar = seed_passages()[2]
    assert not checker.judge("Macron met Haftar in Benghazi", [haftar]).supported
    sarraj = passage_of(seed_article(), "Italy supports the U N", after=260)
    soldiers = checker.judge("Italy sent 300 soldiers to Tripoli", [sarraj])
    assert not soldiers.supported and "300" in soldiers.detail


def test_quotations_are_verbatim_replaced_or_refused(checker: SupportChecker) -> None:
    spaced = checker.judge('Trenta said “the option does  not exist”', trenta())
    assert spaced.supported and spaced.text == 'Trenta said “the option does  not exist”'
    close = checker.judge('Trenta said "I can tell the option does not exist"', trenta())
    assert close.supported
    assert close.text == 'Trenta said "I can say the option does not exist"'
    invented = checker.judge('Trenta said "we will send troops tomorrow"', trenta())
    assert not invented.supported and invented.reason == INVENTED_QUOTE
    assert "unverified" in invented.detail
    recased = checker.judge('Trenta said "THE OPTION DOES NOT EXIST"', trenta())
    assert recased.text != 'Trenta said "THE OPTION DOES NOT EXIST"'


def test_sentences_are_split_after_their_markers() -> None:
    text = ('Trenta said "No. Never." [1] Conte met Mr. Haftar [2][3]. U.S. officials '
            "were silent [1].\n- A bullet [2]\nNo end [1]")
    assert [s for s, _ in split_sentences(text)] == [
        'Trenta said "No. Never." [1]', "Conte met Mr. Haftar [2][3].",
        "U.S. officials were silent [1].", "- A bullet [2]", "No end [1]"]
    buffer = SentenceBuffer()
    assert buffer.feed("Trenta ruled out force [1]. Con") == [
        ("Trenta ruled out force [1].", " ")]
    assert buffer.feed("te agreed") == []
    assert buffer.flush() == [("Conte agreed", "")]


def test_sentence_check_renumbers_in_order_of_appearance(checker: SupportChecker) -> None:
    check = SentenceCheck(seed_passages(), checker)
    shown = [check.add(s, gap) for s, gap in split_sentences(
        "Conte said Haftar has always played an important role [3]. Bogus [8]. "
        "Trenta ruled out an armed intervention in Libya [1][3].")]
    assert shown == ["Conte said Haftar has always played an important role [1].", "",
                     " Trenta ruled out an armed intervention in Libya [2][1]."]
    answer = check.answer("q", answerer="llm", timings={})
    assert answer is not None and answer.text == "".join(shown)
    assert [c.number for c in answer.citations] == [1, 2]
    assert answer.citations[0].chunk_id == seed_passages()[2].chunk.id
    body = seed_article().body
    assert all(body[c.start:c.end] == c.quote for c in answer.citations)
    assert any("Bogus" in w and "cites a missing passage" in w for w in answer.warnings)


def test_measured_precision_and_recall_on_the_labelled_seed_cases(
        checker: SupportChecker) -> None:
    cases = load_cases(CASES)
    assert len(cases) >= 30 and sum(not c.supported for c in cases) >= 10
    result = score("product rule", checker, cases)
    assert result.precision >= 0.85, result.wrong
    assert result.recall >= 0.75, result.wrong
    keep_nothing = score("drop all", SupportChecker(checker.embedder, min_similarity=9,
                                                    min_overlap=9), cases)
    assert keep_nothing.precision < result.precision, "dropping everything is no check"


def test_best_support_picks_the_passage_that_supports_alone(checker: SupportChecker) -> None:
    passages = seed_passages()
    found = checker.best_support("Conte said Haftar has always played an important role",
                                 passages)
    assert found is not None and found[0] == 2 and found[1].supported
    assert checker.best_support("The capital of France is Paris",
                                [capital_and_france(), eu_passage()]) is None
    assert checker.best_support("Conte said the option does not exist", trenta()) is None


def test_uncited_sentence_gets_a_marker_or_is_dropped(checker: SupportChecker) -> None:
    assert with_marker("Paris is nice.", 2) == "Paris is nice [2]."
    assert with_marker('Trenta said "No."', 1) == 'Trenta said "No." [1]'
    assert with_marker("No end", 3) == "No end [3]"
    check = SentenceCheck(seed_passages(), checker, question="What did Trenta say?",
                          cite_uncited=True)
    shown = check.add("Trenta ruled out an armed intervention in Libya.", "")
    assert shown == "Trenta ruled out an armed intervention in Libya [1]."
    assert check.last_assigned == 1 and "by the support check" in check.notes[-1]
    assert check.add("The capital of France is Paris.", "") == ""
    assert check.last_assigned is None and "dropped (no citation)" in check.notes[-1]
    old_rule = SentenceCheck(seed_passages(), checker)  # the default: the model's own [n] only
    assert old_rule.add("Trenta ruled out an armed intervention in Libya.", "") == ""


def test_uncited_sentence_is_never_cited_to_an_off_topic_passage(
        checker: SupportChecker) -> None:
    eu = eu_passage()
    assert not on_topic("What did Trenta say?", eu) and on_topic("What about Brussels?", eu)
    assert on_topic("Why?", eu), "a question without content words restricts nothing"
    sentence = split_sentences(eu.chunk.text)[0][0]
    assert checker.best_support(sentence, [eu]) is not None
    check = SentenceCheck([eu], checker, question="What did Trenta say?", cite_uncited=True)
    assert check.add(sentence, "") == ""


def test_measurements_count_check_citations_apart(checker: SupportChecker) -> None:
    from qa.eval.llm_check import Case, kept_by_answerer
    from qa.eval.llm_measure import KEPT, KEPT_BY_CHECK, SetFigures, replay

    reply = ("Trenta ruled out an armed intervention in Libya [1]. Conte said Haftar has "
             "always played an important role. The moon is cheese.")
    verdicts, text = replay(reply, seed_passages(), checker, "What did they say?",
                            cite_uncited=True)
    assert [(v[1], v[3]) for v in verdicts] == [(KEPT, None), (KEPT_BY_CHECK, 3),
                                                ("no citation", None)]
    assert text.endswith("important role [2].")
    figures = SetFigures("seed")
    figures.verdicts.update(v[1] for v in verdicts)
    row = figures.to_dict()
    assert (row["kept_sentences"], row["kept_by_check"]) == (1, 1)
    assert row["dropped"] == {"no citation": 1}
    texts = tuple(p.chunk.text for p in seed_passages())
    sentence = "Conte said Haftar has always played an important role."
    question = "What did Conte say?"
    assert kept_by_answerer(checker, Case(sentence, texts, True, question, cited=False))[0]
    assert not kept_by_answerer(checker, Case(sentence, texts[:1], True, question, cited=False))[0]
