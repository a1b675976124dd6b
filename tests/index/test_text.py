"""index/text.py: the one home of text normalisation, stemming and stop lists."""

from __future__ import annotations

from bm25s.stopwords import STOPWORDS_EN

from index.text import (
    ANSWER_STOPWORDS,
    KEYWORD_STOPWORDS,
    keyword_words,
    normalise_quotes,
    normalise_text,
    stem,
    stem_words,
    strip_control,
)


def test_keyword_stop_list_is_bm25s_english_list() -> None:
    keyword, answer = KEYWORD_STOPWORDS, ANSWER_STOPWORDS
    assert keyword == frozenset(STOPWORDS_EN)
    assert keyword < answer, "the answerer's list is the broader one"


def test_one_stemmer_for_single_words_and_batches() -> None:
    assert stem("Interventions") == "intervent" == stem_words(["interventions"])[0]
    assert stem("Trenta’s") == stem("trenta")


def test_keyword_words_drop_stop_words_and_single_letters() -> None:
    assert keyword_words("The option does not exist, Trenta said: a no-go") == [
        "option", "does", "exist", "trenta", "said", "go"]


def test_normalisation() -> None:
    assert normalise_text("  Conte\u00a0 said\n\n it ") == "Conte said it"
    assert normalise_quotes("“Yes,” he said ‘no’") == "\"Yes,\" he said 'no'"
    assert strip_control("a\x00b\tc\u200bd") == "ab cd"
