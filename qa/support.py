"""Does a cited passage support one sentence of an LLM answer? The per-sentence judge.

A sentence passes when its quotations are verbatim in a cited passage (or are replaced by the
span they clearly paraphrase), every name and number in it occurs in a cited passage, the
speaker it names is the one the passage attributes the words to (the extractive answerer's
speaker analysis), it neither adds nor removes a negation against the best-matching passage
sentence, and its content is close to that sentence: embedding similarity (the bundled
MiniLM) or content-word overlap, thresholds measured with `python -m qa.eval.llm_check`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.text import ANSWER_STOPWORDS, normalise_quotes, stem, wordset
from qa.citations import find_quotes
from qa.extractive import ArticleAnalysis, analyse_article
from qa.records import Passage
from qa.text import (
    QUESTION_WORDS,
    SENTENCE_STARTERS,
    Word,
    content_stems,
    name_matches,
    question_names,
    words,
)

NO_CITATION = "no citation"
MISSING_PASSAGE = "cites a missing passage"
NAME_OR_NUMBER = "a name/number not in the cited passage"
UNSUPPORTED = "not supported by the cited passage"
INVENTED_QUOTE = "invented quotation"

#: Supported when the best passage sentence is at least this similar (cosine, MiniLM)...
#: (chosen on the middle of the best plateau of `python -m qa.eval.llm_check --sweep`)
MIN_SIMILARITY = 0.70
#: ... or holds this share of the sentence's content words and is at least LOOSE_SIMILARITY
#: similar (without an embedder: the overlap alone decides).
MIN_OVERLAP = 0.6
LOOSE_SIMILARITY = 0.35
#: A non-verbatim quotation is replaced by a passage window whose words match it this well.
QUOTE_MATCH = 0.7
#: The extra words of the passage window compared with a sentence beside the passage's spans.
WINDOW_SLACK = 4
#: Passage-sentence embeddings a checker keeps at most.
VECTOR_MEMO = 20_000

HONORIFICS = wordset("mr mrs ms dr prof sir dame")
NEGATORS = wordset("not no never nor cannot none nothing neither nobody nowhere without")
_NEGATION_REACH = 3
_QUOTE_TRIM = " .,;:!?"


@dataclass(frozen=True)
class Judgement:
    """The verdict on one sentence: kept (with its possibly corrected text) or why not."""

    supported: bool
    text: str
    reason: str = ""
    detail: str = ""
    #: similarity + content overlap of the closest passage sentence: ranks the passages that
    #: each support an uncited sentence (`SupportChecker.best_support`)
    strength: float = 0.0


@dataclass(frozen=True)
class PassageSentence:
    """A passage sentence (span of the chunk text) with its speakers."""

    text: str
    speakers: frozenset[str]
    start: int = 0
    end: int = 0


def _is_negator(word: Word) -> bool:
    return word.lower in NEGATORS or word.lower.endswith(("n't", "n’t"))


def negation_profile(text: str) -> tuple[set[str], set[str], bool]:
    """(stems said under a negation, stems said plainly, whether any negator occurs)."""
    negated: set[str] = set()
    plain: set[str] = set()
    reach, seen = 0, False
    for word in words(text):
        if _is_negator(word):
            reach, seen = _NEGATION_REACH, True
            continue
        if word.lower in ANSWER_STOPWORDS:
            reach = max(0, reach - 1)
            continue
        (negated if reach else plain).add(stem(word.lower))
        reach = 0
    return negated, plain, seen


def negation_conflict(sentence: str, passage_sentence: str) -> str:
    """How the sentence flips a negation of the passage sentence ("" when it does not)."""
    s_neg, s_plain, s_any = negation_profile(sentence)
    p_neg, p_plain, p_any = negation_profile(passage_sentence)
    flipped = (s_neg & (p_plain - p_neg)) | ((s_plain - s_neg) & (p_neg - p_plain))
    if flipped:
        return f"negation flipped on “{sorted(flipped)[0]}”"
    if s_any and not p_any:
        return "it adds a negation the passage does not make"
    return ""


def sentence_names(text: str) -> list[str]:
    """Names in a sentence: qa.text's capitalised runs, plus a capitalised first word that is
    no stop word, question word or sentence starter ("Conte said ...")."""
    names = question_names(text)
    tokens = words(text)
    if tokens and tokens[0].capitalised:
        first = tokens[0]
        if (first.lower not in ANSWER_STOPWORDS and first.lower not in QUESTION_WORDS
                and first.text not in SENTENCE_STARTERS
                and not any(n.split()[0] == first.text for n in names)):
            names.insert(0, first.text)
    return names


def _numbers(text: str) -> set[str]:
    return {w.text.replace(",", "") for w in words(text) if any(c.isdigit() for c in w.text)}


def _passage_pool(passages: Sequence[Passage]) -> str:
    """The text a name or number may come from: passage text, title, source, date."""
    return "\n".join(f"{p.chunk.text}\n{p.article.title}\n{p.article.source}\n"
                     f"{p.article.published}" for p in passages)


def missing_name_or_number(sentence: str, passages: Sequence[Passage]) -> str:
    """The first name or number of the sentence that no cited passage contains ("" if none)."""
    pool_text = _passage_pool(passages)
    pool = [w.lower for w in words(pool_text)]
    for name in sentence_names(sentence):
        name = " ".join(w.text for w in words(name) if w.lower not in HONORIFICS)
        if name and not name_matches(name, pool):
            return f"“{name}” is not in the cited passage"
    missing = _numbers(sentence) - _numbers(pool_text)
    return f"“{sorted(missing)[0]}” is not in the cited passage" if missing else ""


def _comparable_quote(text: str) -> str:
    return normalise_quotes(text).replace("’", "'").strip(_QUOTE_TRIM)


def _quote_window(quote: str, passages: Sequence[Passage]) -> str:
    """The passage text (exact characters) whose words best match the quote's, if clear."""
    wanted = [w.lower for w in words(quote)]
    if not wanted:
        return ""
    best, best_score = "", 0.0
    for passage in passages:
        tokens = words(passage.chunk.text)
        for size in range(max(1, len(wanted) - 2), len(wanted) + 3):
            for first in range(0, max(0, len(tokens) - size) + 1):
                window = tokens[first:first + size]
                common = len(set(wanted) & {t.lower for t in window})
                score = 2 * common / (len(set(wanted)) + len({t.lower for t in window}))
                if score > best_score:
                    best_score = score
                    best = passage.chunk.text[window[0].start:window[-1].end]
    return best if best_score >= QUOTE_MATCH else ""


def verify_quotes(sentence: str, passages: Sequence[Passage]) -> tuple[str, str]:
    """(the sentence with each non-verbatim quotation replaced by the passage span it
    paraphrases, "") or (sentence, detail) when a quotation matches nothing clearly."""
    texts = [_comparable_quote(p.chunk.text) for p in passages]
    out, shift = sentence, 0
    for quote in find_quotes(sentence):
        wanted = _comparable_quote(quote.text)
        if not wanted or any(wanted in t for t in texts):
            continue
        replacement = _quote_window(quote.text, passages)
        if not replacement:
            short = quote.text if len(quote.text) <= 80 else quote.text[:77] + "..."
            return sentence, f"quote “{short}” unverified: not verbatim in the cited passage"
        out = out[:quote.start + shift] + replacement + out[quote.end + shift:]
        shift += len(replacement) - (quote.end - quote.start)
    return out, ""


def sentence_speakers(text: str) -> frozenset[str]:
    """Whom the sentence attributes speech to ("Conte said ..." -> {"conte"}); the sentence is
    one unit, so it is analysed as one punctuated sentence."""
    analysis = analyse_article(text if re.search(r"[.!?]\s*$", text) else text + ".")
    return frozenset().union(*analysis.speakers) if analysis.speakers else frozenset()


def _passage_sentences(analysis: ArticleAnalysis) -> list[PassageSentence]:
    """Each span of a passage with its speakers (its own, inherited, else its neighbours')."""
    out = []
    for index, (start, end) in enumerate(analysis.spans):
        who = analysis.speakers[index] | analysis.inherited[index]
        if not who:
            near = [analysis.speakers[i] for i in (index - 1, index + 1)
                    if 0 <= i < len(analysis.spans)]
            who = frozenset().union(*near) if near else frozenset()
        out.append(PassageSentence(analysis.body[start:end], who, start, end))
    return out


def _sentence_window(sentence: str, body: str,
                     spans: Sequence[PassageSentence]) -> list[PassageSentence]:
    """The run of passage words, a little longer than the sentence, that shares most of its
    content words (a long span dilutes the similarity of a short faithful sentence); it has
    the speakers of the spans it overlaps."""
    stems = set(content_stems(sentence))
    tokens = words(body)
    size = len(words(sentence)) + WINDOW_SLACK
    if not stems or len(tokens) <= size:
        return []
    keys = [stem(t.lower) for t in tokens]
    best = max(range(len(tokens) - size + 1), key=lambda i: len(stems & set(keys[i:i + size])))
    start, end = tokens[best].start, tokens[best + size - 1].end
    who = frozenset().union(*[s.speakers for s in spans if s.start < end and start < s.end])
    return [PassageSentence(body[start:end], who, start, end)]


def _overlap(stems: set[str], text: str) -> float:
    return len(stems & set(content_stems(text))) / len(stems) if stems else 1.0


class SupportChecker:
    """Judges sentences against their cited passages; `embedder` needs `embed_small`."""

    def __init__(self, embedder: Any = None, *, min_similarity: float = MIN_SIMILARITY,
                 min_overlap: float = MIN_OVERLAP,
                 loose_similarity: float = LOOSE_SIMILARITY) -> None:
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.min_overlap = min_overlap
        self.loose_similarity = loose_similarity
        self._vectors: dict[str, np.ndarray] = {}

    def judge(self, sentence: str, passages: Sequence[Passage]) -> Judgement:
        """Whether `passages` (the cited ones) support `sentence` (markers removed)."""
        text, detail = verify_quotes(sentence, passages)
        if detail:
            return Judgement(False, sentence, INVENTED_QUOTE, detail)
        detail = missing_name_or_number(text, passages)
        if detail:
            return Judgement(False, text, NAME_OR_NUMBER, detail)
        detail, strength = self.assess(text, passages)
        if detail:
            return Judgement(False, text, UNSUPPORTED, detail, strength)
        return Judgement(True, text, strength=strength)

    def best_support(self, sentence: str, passages: Sequence[Passage]
                     ) -> tuple[int, Judgement] | None:
        """(index, judgement) of the passage that ALONE supports `sentence` best under the
        same rules as `judge`, None when none does: how a sentence the model left uncited
        gets its citation (ties go to the earlier passage)."""
        supported = [(index, verdict) for index, passage in enumerate(passages)
                     if (verdict := self.judge(sentence, [passage])).supported]
        if not supported:
            return None
        return max(supported, key=lambda item: item[1].strength)

    def scores(self, sentence: str,
               candidates: Sequence[PassageSentence]) -> list[tuple[float, float]]:
        """(similarity, content overlap) of the sentence with each passage sentence."""
        stems = set(content_stems(sentence))
        overlaps = [_overlap(stems, c.text) for c in candidates]
        if self.embedder is None:
            return [(0.0, o) for o in overlaps]
        matrix = self._embedded([c.text for c in candidates])
        similarities = matrix @ self.embedder.embed_small([sentence])[0]
        return [(float(s), o) for s, o in zip(similarities, overlaps, strict=True)]

    def _embedded(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of passage sentences, each computed once (a passage is cited by many
        sentences of an answer); the memo is emptied when it reaches VECTOR_MEMO entries."""
        memo = self._vectors
        known = {t: memo[t] for t in texts if t in memo}
        todo = [t for t in dict.fromkeys(texts) if t not in known]
        if todo:
            known.update(zip(todo, self.embedder.embed_small(todo), strict=True))
            if len(memo) + len(todo) > VECTOR_MEMO:
                self._vectors = memo = {}
            memo.update((t, known[t]) for t in todo)
        return np.vstack([known[t] for t in texts])

    def supports(self, similarity: float, overlap: float) -> bool:
        """The content rule on the best passage sentence."""
        if self.embedder is None:
            return overlap >= self.min_overlap
        return similarity >= self.min_similarity or (
            overlap >= self.min_overlap and similarity >= self.loose_similarity)

    def unsupported(self, sentence: str, passages: Sequence[Passage]) -> str:
        """Why the best-matching passage sentence does not support `sentence` ("" if it does)."""
        return self.assess(sentence, passages)[0]

    def assess(self, sentence: str, passages: Sequence[Passage]) -> tuple[str, float]:
        """(why the best-matching passage sentence does not support `sentence`, "" if it
        does; that sentence's similarity + content overlap)."""
        candidates: list[PassageSentence] = []
        for passage in passages:
            spans = _passage_sentences(analyse_article(passage.chunk.text))
            candidates += spans + _sentence_window(sentence, passage.chunk.text, spans)
        if not candidates:
            return "the cited passage is empty", 0.0
        scored = self.scores(sentence, candidates)
        best = max(range(len(candidates)), key=lambda i: scored[i][0] + scored[i][1])
        chosen, (similarity, overlap) = candidates[best], scored[best]
        strength = similarity + overlap
        speakers = sentence_speakers(sentence)
        if speakers and chosen.speakers and not speakers & chosen.speakers:
            return (f"the passage attributes these words to "
                    f"{', '.join(sorted(s.title() for s in chosen.speakers))}", strength)
        flipped = negation_conflict(sentence, chosen.text)
        if flipped:
            return flipped, strength
        if not self.supports(similarity, overlap):
            return (f"closest passage sentence too far (similarity {similarity:.2f}, "
                    f"shared content words {overlap:.0%})", strength)
        return "", strength


