"""Questions: validation, parsing, follow-up rewriting and routing by kind.

`QuestionInfo.parse` reads what the answerers need (names, quoted terms, stems, answer type,
speaker and topic of "what did X say" questions, time words such as "this week"); `route`
sorts a question into the kind of answerer it needs; `rewrite_followup` makes a follow-up stand
alone without a model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from index.dates import time_phrase
from index.text import stem, strip_control, wordset
from qa.errors import InvalidQuestionError
from qa.text import content_stems, question_names, quoted_terms, words

MAX_QUESTION_CHARS = 2000

_SAY_PATTERNS = (
    re.compile(r"^\s*(?:what|how)\s+(?:did|does|do|has|have|had|was|is|were)\s+(?P<who>.+?)\s+"
               r"(?:say|said|tell|told|think|comment(?:ed)?|claim(?:ed)?|state|reply|respond|"
               r"argue|announce|mean|write|declare|react)\b"
               r"(?:\s+(?:about|on|regarding|concerning|of|to|over|when|after|in))?"
               r"\s*(?P<topic>.*?)[\s?.!]*$", re.IGNORECASE),
    re.compile(r"^\s*(?:what|how)\s+(?:was|is|were|are)\s+(?P<who>.+?)['’]s?\s+"
               r"(?:position|view|stance|comment|reaction|response|opinion)s?"
               r"(?:\s+(?:on|about|to|regarding|over))?\s*(?P<topic>.*?)[\s?.!]*$",
               re.IGNORECASE),
)
#: Question words and the answer type they ask for (see `_answer_type`).
_ANSWER_TYPES = (("how many", "number"), ("how much", "number"), ("who", "person"),
                 ("whom", "person"), ("whose", "person"), ("where", "place"), ("when", "time"),
                 ("what year", "time"), ("which", "name"), ("what", "other"))
#: "Who said ...", "who criticised ...": a speaker is wanted for some words.
_WHO_SAID = re.compile(
    r"^\s*who\s+(?:has\s+|have\s+|had\s+)?(?:said|says|say|told|tells|claimed|stated|declared|"
    r"warned|argued|denied|dismissed|criticised|criticized|praised|accused|blamed|called|"
    r"described|announced|commented|insisted|urged|vowed|promised)\b", re.IGNORECASE)
#: Answer types with a short answer phrase (a name, a place, a date, a number).
_SHORT_TYPES = frozenset({"person", "name", "place", "time", "number"})

#: Nouns that make "which ..." ask for an outlet ("which newspaper", "what TV network").
_OUTLET_WORDS = wordset("""newspaper paper daily outlet broadcaster network magazine channel
radio television tv agency station""")
#: The same as stems (so plurals count), for telling an outlet from an addressee ("state
#: television", "told reporters").
OUTLET_NOUNS = frozenset(map(stem, _OUTLET_WORDS))
_OUTLET = rf"(?:{'|'.join(sorted(_OUTLET_WORDS))}|dailies|agencies)s?"
#: "which newspaper", at most two words between ("which UK newspaper", "what TV network"),
#: none of them a verb ("what did the paper say" asks for no outlet).
_WHICH_OUTLET = (r"\b(?:which|what)\s+(?:(?!(?:is|are|was|were|do|does|did|has|have|had|will|"
                 rf"would|can|could)\b)[\w'’-]+\s+){{0,2}}?{_OUTLET}\b")
_SPOKE_TO = (r"(?:tell|told|talk(?:ed)?\s+to|speak\s+to|spoke\s+to|give\s+(?:an?\s+)?"
             r"interviews?\s+to|gave\s+(?:an?\s+)?interviews?\s+to)")
_TAIL = r"(?:\s+(?:that\s+|about\s+)?(?P<topic>.*?))?[\s?.!]*$"
#: Questions asking where or to whom someone spoke, and whether the answer is an outlet.
_VENUE_PATTERNS = (
    (re.compile(rf"{_WHICH_OUTLET}\s+(?:interviewed|quoted|(?:spoke|talked)\s+(?:to|with))\s+"
                rf"(?P<who>.+?)(?:\s+(?:about|on|over|regarding)\s+(?P<topic>.*?))?[\s?.!]*$",
                re.IGNORECASE), True),
    (re.compile(rf"{_WHICH_OUTLET}\s+(?:did|does|has|had)\s+(?P<who>.+?)\s+(?:{_SPOKE_TO}|"
                rf"(?:talk|speak)\s+with|say|said|write|wrote)\b{_TAIL}", re.IGNORECASE), True),
    (re.compile(rf"{_WHICH_OUTLET}\s+(?:was|were)\s+(?P<who>.+?)\s+interviewed"
                rf"(?:\s+(?:by|on|in|for))?\b{_TAIL}",
                re.IGNORECASE), True),
    (re.compile(r"^\s*who\s+interviewed\s+(?P<who>.+?)(?:\s+(?:about|on|over|regarding)\s+"
                r"(?P<topic>.*?))?[\s?.!]*$", re.IGNORECASE), True),
    (re.compile(rf"^\s*(?:who|whom)\s+did\s+(?P<who>.+?)\s+{_SPOKE_TO}\b{_TAIL}",
                re.IGNORECASE), False),
    (re.compile(rf"^\s*to\s+whom\s+did\s+(?P<who>.+?)\s+(?:speak|talk|say|tell|give\s+(?:an?\s+)?"
                rf"interviews?)\b{_TAIL}", re.IGNORECASE), False),
    (re.compile(rf"^\s*where\s+did\s+(?P<who>.+?)\s+(?:say|tell|speak|talk|comment|claim|state|"
                rf"announce)\b{_TAIL}", re.IGNORECASE), True),
)

_PERSONAL = {"he", "she", "him", "her", "his", "hers"}
_THING = {"it", "this", "that", "they", "them", "their"}
_ABOUT = re.compile(r"^\s*(?:and\s+|but\s+)?(?:what|how)\s+about\s+(?P<topic>.+?)[\s?.!]*$",
                    re.IGNORECASE)


def clean_question(question: Any) -> str:
    """The question without control characters; InvalidQuestionError if empty or too long."""
    if not isinstance(question, str):
        raise InvalidQuestionError(f"the question must be text, got {type(question).__name__}")
    text = strip_control(question).strip()
    if not text:
        raise InvalidQuestionError("the question is empty: type a question about the articles")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(f"the question is {len(text)} characters long; the limit is "
                                   f"{MAX_QUESTION_CHARS}: shorten it")
    return text


def _answer_type(lower: str) -> str:
    """The answer type a lower-cased question asks for ("person", "place", ... or "other"):
    that of its first question word ("which actress ... when she became" asks for a name),
    the longer opening winning at the same place ("what year" over "what")."""
    found = [(match.start(), order, kind) for order, (prefix, kind) in enumerate(_ANSWER_TYPES)
             if (match := re.search(rf"\b{prefix}\b", lower))]
    return min(found)[2] if found else "other"


@dataclass(frozen=True)
class VenueQuestion:
    """A question for the outlet or person `speaker` spoke to ("Which newspaper interviewed
    X?", "Who did X tell ...?", "Where did X say ...?"), with the words after the verb as
    `topic`. `outlet`: the answer type is an outlet ("which newspaper / network ...",
    "who interviewed X", "where did X say"), so "told reporters" does not answer; False when
    anyone X told answers ("who did X tell")."""

    speaker: str
    topic: str = ""
    outlet: bool = True


def venue_question(text: str) -> VenueQuestion | None:
    """The venue question `text` asks, None when it asks none."""
    for pattern, outlet in _VENUE_PATTERNS:
        match = pattern.search(text)
        if match:
            topic = (match.group("topic") or "").strip()
            return VenueQuestion(match.group("who").strip(), topic, outlet)
    return None


@dataclass(frozen=True)
class QuestionInfo:
    """What the answerers need to know about a question; `time_phrase` is its time words
    ("this week", "since Monday"; "" when none), which the pipeline turns into dates.
    `venue`: the question asks which outlet or whom someone spoke to (None when not)."""

    text: str
    names: tuple[str, ...]
    quoted: tuple[str, ...]
    stems: tuple[str, ...]
    qtype: str
    speaker: str = ""
    topic: str = ""
    time_phrase: str = ""
    venue: VenueQuestion | None = None

    @classmethod
    def parse(cls, question: str) -> QuestionInfo:
        text = question.strip()
        speaker = topic = ""
        for pattern in _SAY_PATTERNS:
            match = pattern.match(text)
            if match:
                speaker, topic = match.group("who").strip(), match.group("topic").strip()
                break
        qtype = "say" if speaker else _answer_type(text.lower())
        return cls(text=text, names=tuple(question_names(text)), quoted=tuple(quoted_terms(text)),
                   stems=tuple(dict.fromkeys(content_stems(text))), qtype=qtype,
                   speaker=speaker, topic=topic, time_phrase=time_phrase(text),
                   venue=None if speaker else venue_question(text))


class QuestionKind(Enum):
    """Which kind of answerer a question needs (today one answerer serves them all)."""

    SAID = "said"  # "what did X say (about Y)": X's quotes (a future quote index)
    WHO_SAID = "who_said"  # "who said / criticised ...": the quote index in reverse
    SHORT = "short"  # who / which / where / when / how many: a short answer phrase
    GENERAL = "general"  # anything else: the most relevant passages, quoted


def route(info: QuestionInfo) -> QuestionKind:
    """The kind of a parsed question."""
    if info.qtype == "say":
        return QuestionKind.SAID
    if _WHO_SAID.match(info.text):
        return QuestionKind.WHO_SAID
    if info.qtype in _SHORT_TYPES:
        return QuestionKind.SHORT
    return QuestionKind.GENERAL


# --- follow-up questions ---------------------------------------------------------------------

def previous_questions(history: Sequence[Any] | None) -> list[str]:
    """The user's earlier questions from a chat history in any common shape.

    Accepts (user, assistant) pairs, {"role", "content"} dicts (Gradio "messages"), LangChain
    messages, or plain strings (taken as earlier questions).
    """
    out: list[str] = []
    for item in history or ():
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (tuple, list)) and item:
            if isinstance(item[0], str):
                out.append(item[0])
        elif isinstance(item, dict):
            if item.get("role") == "user":
                content = item.get("content")
                if isinstance(content, str):
                    out.append(content)
        elif getattr(item, "type", None) == "human" and isinstance(item.content, str):
            out.append(item.content)
    return [q for q in out if q.strip()]


def _subject(info: QuestionInfo) -> tuple[str, str]:
    """(person or main name, topic) of an earlier question, for carrying over."""
    names = list(info.names)
    person = info.speaker if info.speaker and question_names(info.speaker) else ""
    if not person and names:
        person = names[0]
    topic = info.topic or (names[-1] if len(names) > 1 else "")
    return person, topic


def _what_about(previous: str, info: QuestionInfo, new: str) -> str:
    """"what about Y?" in the frame of the previous question."""
    if info.speaker and info.topic and not question_names(new):
        return f"What did {info.speaker} say about {new}?"
    if info.speaker and info.topic:
        return previous.replace(info.topic, new) if info.topic in previous else (
            f"{previous} And about {new}?")
    return f"{previous.rstrip('?. ')} - and {new}?"


def _swap_pronoun(question: str, person: str) -> str:
    """The first personal pronoun of `question` replaced by `person` ("his" -> "X's")."""
    def swap(match: re.Match[str]) -> str:
        word = match.group(0).lower()
        return f"{person}'s" if word in ("his", "hers") else person

    return re.sub(r"\b(?:he|she|him|her|his|hers)\b", swap, question, count=1,
                  flags=re.IGNORECASE)


def rewrite_followup(question: str, history: Sequence[Any] | None) -> str:
    """Make an underspecified follow-up standalone using the previous question (no LLM).

    "what did he say about France?" after "What did Conte say about Libya?" becomes
    "what did Conte say about France?"; "what about Salvini?" keeps the previous frame.
    """
    earlier = previous_questions(history)
    if not earlier:
        return question
    previous = earlier[-1]
    info = QuestionInfo.parse(previous)
    person, topic = _subject(info)
    about = _ABOUT.match(question)
    if about:
        return _what_about(previous, info, about.group("topic"))
    tokens = words(question)
    lowered = [t.lower for t in tokens]
    if person and any(w in _PERSONAL for w in lowered) and person not in question:
        return _swap_pronoun(question, person)
    if (topic or person) and any(w in _THING for w in lowered) and not question_names(question):
        context = topic or person
        return f"{question.rstrip()} (about {context})"
    if not question_names(question) and len(tokens) <= 6 and (person or topic):
        return f"{question.rstrip()} ({', '.join(x for x in (person, topic) if x)})"
    return question


class FollowupRule:
    """The offline rewriter: `rewrite_followup` behind the pipeline's rewriter interface."""

    def rewrite(self, question: str, history: Sequence[Any]) -> str:
        return rewrite_followup(question, history)
