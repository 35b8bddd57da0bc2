"""Crisis phrase matching: true positives, false positives, misspellings, lists."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatsupport import loading
from chatsupport.core.crisis import CrisisMatcher, PhraseListError, tokens

DEFAULT = loading.crisis_matcher()  # the packaged list


# ---------------------------------------------------------------------------
# The shipped list
# ---------------------------------------------------------------------------

TRUE_POSITIVES = [
    # plain
    "I want to die",
    "i just want to die",
    "I think about suicide every day",
    "I feel suicidal tonight",
    "I'm going to kill myself",
    "I want to end my life",
    "I want to end it all",
    "I don't want to live anymore",
    "I dont want to be alive",
    "everyone would be better off without me",
    "I'd be better off dead",
    "there's no reason to live",
    "I have nothing to live for",
    "I wish I was dead",
    "I wish I were dead",
    "I've been self harming again",
    "I started cutting myself again",
    "I want to hurt myself",
    "I'm thinking of taking an overdose",
    "I'm going to take all my pills",
    "nobody would miss me",
    "No one would miss me if I was gone",
    "I want to go to sleep and never wake up",
    "I can't go on anymore",
    "I wrote a suicide note",
    "I want to unalive myself",
    "I cut myself on purpose",  # not covered by the "cut myself shaving" idioms
    "I want to die, I'm not laughing",
    # spellings, slang, misspellings, repetitions
    "i wanna die",
    "i wana die",
    "I wanna diiiiie",
    "i want 2 die",
    "u know i want to die",
    "WANT TO DIE!!!",
    "want...to...die",
    "i want to kil myself",
    "im gonna kill myself",
    "Imma kill myself",
    "kms",
    "k1ll mys3lf",
    "kill my self",
    "kill myslef",
    "killlll myselffff",
    "suicde",
    "sucide",
    "suiside",
    "su1c1de",
    "$uicide",
    "sewerslide",
    "dont want to live",
    "do not want to live",
    "don\u2019t want to live",  # typographic apostrophe
    "I do not wanna live",
    "I can not go on anymore",
    "cannot go on anymore",
    "self-harm",
    "selfharm",
    "self harm",
    "Self_Harm",
    "cuting myself",
    "cutting my self",
    "overdose",
    "overdosed",
    "overdosing",
    "overdsoe",
    "gonna overdose",
    "end it all",
    "END IT ALL.",
    "I want to die\u200b",  # zero-width space
    "Su\u0301icide",  # accent
    "\uff53\uff55\uff49\uff43\uff49\uff44\uff45",  # fullwidth
]


@pytest.mark.parametrize("text", TRUE_POSITIVES)
def test_true_positives(text: str) -> None:
    assert DEFAULT.matches(text), text
    assert DEFAULT.find(text) is not None


FALSE_POSITIVES = [
    "this traffic is killing me",
    "I could die laughing",
    "I nearly died laughing",
    "I want to die laughing",
    "kill the process",
    "kill -9 the server",
    "just kill the app and restart it",
    "I'm dying to see the film",
    "dying to see the film",
    "my phone died",
    "I'm dead tired",
    "you're killing it!",
    "this is overkill",
    "I killed it at the interview",
    "the suspense is killing me",
    "Suicide Squad was a bad film",
    "it's a suicide mission",
    "that was political suicide",
    "I want to dye my hair",
    "I want to die my hair blue",
    "he overdoes it at the gym",
    "I overdid the salt",
    "I overdosed on coffee today",
    "I cut myself shaving",
    "I accidentally cut myself cooking",
    "I hurt myself at the gym",
    "I burned myself on the stove",
    "I don't want to live in London",
    "I don't want to live with my parents",
    "I'm putting myself first",
    "I'm getting myself a coffee",
    "I keep hunting myself a bargain",
    "I'm waiting to see",
    "I talked my own way out",
    "The film ends with the hero's death",
    "I love living here",
    "I can't go on the trip",
    "dead line is tomorrow",
    "goodbye everyone, see you tomorrow",
    "the battery is dying",
    "I want to kill time before the bus",
    "I'll kill him at chess",
    "",
    "   ",
    "!!!",
]


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_false_positives(text: str) -> None:
    assert not DEFAULT.matches(text), (text, DEFAULT.find(text))


def test_known_trade_off_end_it_all() -> None:
    # "end it all" has innocent uses, but it is one of the commonest ways people say
    # they are thinking of suicide; a kind private notice is the lesser harm.
    assert DEFAULT.matches("let's end it all on a good note")


def test_every_shipped_phrase_matches_itself_in_a_sentence() -> None:
    for phrase in DEFAULT.phrases:
        assert DEFAULT.find(phrase) is not None, phrase
        assert DEFAULT.matches(f"Honestly... {phrase.upper()}!! idk"), phrase


def test_find_reports_the_phrase_as_written() -> None:
    assert DEFAULT.find("i wanna die") == "want to die"
    assert DEFAULT.find("kms") == "kill myself"
    assert DEFAULT.find("nothing at all") is None


def test_long_message_is_fast() -> None:
    text = ("I had a long day at work and the traffic was terrible, " * 40)[:2000]
    start = time.perf_counter()
    for _ in range(50):
        assert not DEFAULT.matches(text)
    per_message = (time.perf_counter() - start) / 50
    assert per_message < 0.02, per_message
    assert DEFAULT.matches(text[:1900] + " i want to die")


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


def test_tokens() -> None:
    assert tokens("I don't wanna LIVE!!!") == ["i", "dont", "want", "to", "live"]
    assert tokens("k1ll mys3lf") == ["kil", "myself"]
    assert tokens("Room 2000") == ["rom", "20"]
    assert tokens("I do not") == ["i", "dont"]
    assert tokens("self\u00adharm") == ["self", "harm"]  # soft hyphen is invisible
    assert tokens("") == []


@given(st.text(max_size=300))
def test_matching_never_raises(text: str) -> None:
    assert isinstance(DEFAULT.matches(text), bool)


@given(
    st.sampled_from(["i want to die", "kill myself", "suicide", "self harm", "end my life"]),
    # Apostrophes are not separators: they join ("don't" -> "dont").
    st.text(alphabet=st.sampled_from(' .,!?-_*"()/\n\t\u2026'), min_size=1, max_size=3),
    st.booleans(),
)
def test_punctuation_and_case_do_not_matter(phrase: str, sep: str, upper: bool) -> None:
    text = f"{sep}{sep.join(phrase.split())}{sep}"
    text = text.upper() if upper else text
    assert DEFAULT.matches(text), text


@given(
    st.lists(
        st.sampled_from(
            [
                "the",
                "traffic",
                "is",
                "killing",
                "me",
                "die",
                "laughing",
                "process",
                "dying",
                "film",
                "to",
                "see",
                "kill",
                "a",
            ]
        ),
        max_size=12,
    )
)
def test_idiom_words_alone_never_match(words: list[str]) -> None:
    # None of the shipped phrases is made only of these words.
    assert not DEFAULT.matches(" ".join(words))


# ---------------------------------------------------------------------------
# Custom lists and files
# ---------------------------------------------------------------------------


def test_custom_phrases_and_negatives() -> None:
    matcher = CrisisMatcher(["# a comment", "", "hopeless", "give up", "!give up smoking"])
    assert matcher.matches("I feel hopeless")
    assert matcher.matches("I want to give up")
    assert not matcher.matches("I want to give up smoking")
    assert matcher.matches("I give up smoking and I give up")
    assert matcher.phrases == ("hopeless", "give up")


def test_phrase_with_inline_comment() -> None:
    matcher = CrisisMatcher(["hopeless  # added 2026-11"])
    assert matcher.matches("so hopeless")


def test_phrase_list_error_is_a_value_error() -> None:
    assert issubclass(PhraseListError, ValueError)
