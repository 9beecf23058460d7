"""Deterministic English sentences for the embedded stand-in corpus.

A small hand-written grammar (subjects, verbs in all their forms, objects, adjectives, adverbs,
places, times, questions) yields statements, questions, requests and reported speech of 5 to
12 words, which eSpeak NG speaks in about 1.5 to 5 seconds: the range of the CMU ARCTIC
prompts this corpus stands in for.
"""

from __future__ import annotations

import random

_NAMES = (
    "Philip", "Margaret", "Arthur", "Helen", "Gregson", "Ruth", "Thomas", "Edith", "Walter",
    "Alice", "Morgan", "Clara", "Daniel", "Louise", "Henry", "Grace", "Jacob", "Marian",
    "Oliver", "Nora", "Samuel", "Irene", "Victor", "Julia",
)  # fmt: skip
_PEOPLE = (
    "captain", "farmer", "doctor", "teacher", "sailor", "stranger", "girl", "boy", "soldier",
    "driver", "merchant", "neighbour", "hunter", "student", "baker", "guard", "painter",
    "miner", "clerk", "pilot", "widow", "priest", "fisherman", "engineer",
)  # fmt: skip
_THINGS = (
    "letter", "lamp", "horse", "boat", "map", "rifle", "basket", "coat", "window", "bridge",
    "book", "wagon", "kettle", "ladder", "blanket", "compass", "garden", "fence", "candle",
    "bottle", "key", "wheel", "rope", "drum", "clock", "table", "camera", "bicycle", "rug",
    "radio", "envelope", "umbrella", "anchor", "harbour", "orchard", "engine", "apple",
)  # fmt: skip
_ADJECTIVES = (
    "old", "small", "heavy", "quiet", "bright", "broken", "narrow", "yellow", "wooden",
    "strange", "empty", "gentle", "tired", "distant", "silver", "muddy", "careful", "ancient",
    "frozen", "tall", "lonely", "proud", "curious", "dusty", "green", "shallow", "eager",
)  # fmt: skip
# (base, third person singular, past, past participle)
_VERBS = (
    ("carry", "carries", "carried", "carried"),
    ("find", "finds", "found", "found"),
    ("paint", "paints", "painted", "painted"),
    ("open", "opens", "opened", "opened"),
    ("sell", "sells", "sold", "sold"),
    ("mend", "mends", "mended", "mended"),
    ("hide", "hides", "hid", "hidden"),
    ("watch", "watches", "watched", "watched"),
    ("push", "pushes", "pushed", "pushed"),
    ("bring", "brings", "brought", "brought"),
    ("lose", "loses", "lost", "lost"),
    ("build", "builds", "built", "built"),
    ("borrow", "borrows", "borrowed", "borrowed"),
    ("clean", "cleans", "cleaned", "cleaned"),
    ("drop", "drops", "dropped", "dropped"),
    ("follow", "follows", "followed", "followed"),
    ("take", "takes", "took", "taken"),
    ("throw", "throws", "threw", "thrown"),
    ("guard", "guards", "guarded", "guarded"),
    ("examine", "examines", "examined", "examined"),
    ("steal", "steals", "stole", "stolen"),
    ("lift", "lifts", "lifted", "lifted"),
    ("describe", "describes", "described", "described"),
    ("sketch", "sketches", "sketched", "sketched"),
)
_INTRANSITIVE_PAST = (
    "waited", "laughed", "slept", "listened", "shouted", "whispered", "hesitated", "vanished",
    "smiled", "stumbled", "sang", "rested", "argued", "wandered", "returned", "trembled",
)  # fmt: skip
_ADVERBS = (
    "slowly", "quietly", "suddenly", "carefully", "gladly", "nervously", "boldly", "patiently",
    "eagerly", "silently", "quickly", "gently", "calmly", "angrily", "proudly", "briskly",
)  # fmt: skip
_PLACES = (
    "near the river", "in the kitchen", "by the old mill", "across the valley", "at the station",
    "under the bridge", "on the hill", "behind the barn", "in the harbour", "at the market",
    "along the coast", "beside the road", "in the forest", "on the platform", "at the inn",
    "inside the tent", "over the ridge", "near the border", "in the cellar", "on the deck",
)  # fmt: skip
_TIMES = (
    "yesterday", "this morning", "last winter", "at dawn", "after supper", "before noon",
    "on Sunday", "that evening", "at midnight", "last spring", "in the autumn", "by nightfall",
    "early today", "two days ago", "at sunset", "next week",
)  # fmt: skip
_REPORTING = ("said", "claimed", "insisted", "noticed", "explained", "remembered", "believed")
_WH_PLACE = ("Where", "Why", "When", "How")
_REQUESTS = ("Please", "Kindly", "Now", "Quickly")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(rng: random.Random, nouns: tuple[str, ...]) -> str:
    noun = rng.choice(nouns)
    shape = rng.randrange(4)
    if shape == 0:
        return f"the {noun}"
    adjective = rng.choice(_ADJECTIVES)
    if shape == 1:
        return f"the {adjective} {noun}"
    if shape == 2:
        return f"{_article(adjective)} {adjective} {noun}"
    return f"{rng.choice(('his', 'her', 'their', 'my', 'our'))} {noun}"


def _subject(rng: random.Random) -> str:
    return rng.choice(_NAMES) if rng.random() < 0.4 else _noun_phrase(rng, _PEOPLE)


def _sentence(rng: random.Random) -> str:
    subject, thing = _subject(rng), _noun_phrase(rng, _THINGS)
    base, third, past, participle = rng.choice(_VERBS)
    place, time, adverb = rng.choice(_PLACES), rng.choice(_TIMES), rng.choice(_ADVERBS)
    # The sentence forms; only the chosen one draws its further words from ``rng``.
    forms = (
        lambda: f"{subject} {past} {thing} {place}.",
        lambda: f"{time}, {subject} {adverb} {past} {thing}.",
        lambda: f"did {subject} {base} {thing} {place}?",
        lambda: f"{rng.choice(_WH_PLACE)} does {subject} {base} {thing} {time}?",
        lambda: f"{subject} will {base} {thing} {time}.",
        lambda: (
            f"{subject} {rng.choice(_REPORTING)} that {_subject(rng)} had {participle} {thing}."
        ),
        lambda: f"{rng.choice(_REQUESTS)}, {base} {thing} {place}.",
        lambda: f"{subject} {rng.choice(_INTRANSITIVE_PAST)} {adverb} {place}.",
        lambda: f"{subject} {third} {thing} every day.",
        lambda: f"{subject} {adverb} {past} {thing}, and then {rng.choice(_INTRANSITIVE_PAST)}.",
    )
    text = forms[rng.randrange(len(forms))]()
    return text[0].upper() + text[1:]


def generate_sentences(n: int, seed: int) -> list[str]:
    """Return ``n`` distinct sentences, the same for the same ``seed``.

    The list for ``n`` is a prefix of the list for any larger ``n`` with the same seed.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    sentences: list[str] = []
    seen: set[str] = set()
    # The grammar yields millions of sentences; this bound only guards against a broken grammar.
    for _ in range(100 * n + 100):
        if len(sentences) == n:
            break
        text = _sentence(rng)
        if text not in seen:
            seen.add(text)
            sentences.append(text)
    if len(sentences) < n:
        raise RuntimeError(f"the grammar produced only {len(sentences)} distinct sentences of {n}")
    return sentences
