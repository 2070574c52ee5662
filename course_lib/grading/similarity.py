"""Similar submissions: pairs of students whose code for an exercise is suspiciously alike.

Fingerprinting is copydetect's (winnowing over tokens, https://pypi.org/project/copydetect/):
each submission is tokenized with names, strings, comments and whitespace normalised, the
k-grams of the exercise's stub are removed (code every student was given does not count), and
two submissions are compared by the share of their remaining fingerprints that they have in
common (the smaller of the two shares). Submissions with identical normalised code form a group,
reported as pairs with the group's first member. The matching lines of a reported pair come
from copydetect's comparison. The report flags; it never changes points.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.grading.batch import safe_filename, write_atomic
from course_lib.grading.submissions import Submission

K = 25          # characters of normalised code in a fingerprinted k-gram (copydetect's default)
WINDOW = 1      # winnowing window: 1 keeps every k-gram (submissions are small)
THRESHOLD = 0.8
MIN_TOKENS = 60  # submissions with less code than this beyond the stub are not compared
MAX_DETAILED = 200  # pairs of the report with a side-by-side file (the most alike)


@dataclass
class Pair:
    """Two submissions of one exercise and their similarity (the smaller of the two shares of
    fingerprints they have in common, 0..1)."""

    exercise: str
    first: str
    second: str
    similarity: float
    sources: tuple = ()  # ((source, fingerprint) of first, of second), for the matching lines

    @property
    def label(self) -> str:
        return f"{self.exercise.split('_')[0]}: {self.similarity:.0%} alike"

    @property
    def blocks(self) -> list[tuple[str, str]]:
        """The matching code: (lines of first, lines of second) per matching stretch."""
        from copydetect import compare_files

        (source_a, fa), (source_b, fb) = self.sources
        _, _, (slices_a, slices_b) = compare_files(fa, fb)
        return list(zip(_lines(source_a, *slices_a), _lines(source_b, *slices_b), strict=False))


def _fingerprint(source: str, name: str, boilerplate=None):
    from copydetect import CodeFingerprint

    return CodeFingerprint(f"{name}.py", K, WINDOW, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(source))


def _lines(source: str, starts, ends) -> list[str]:
    """The source lines each copied character slice covers, one text block per slice."""
    blocks = []
    for start, end in zip(starts, ends, strict=True):
        first = source.count("\n", 0, int(start))
        last = source.count("\n", 0, max(int(end) - 1, int(start)))
        blocks.append("\n".join(source.splitlines()[first:last + 1]))
    return blocks


def similar_pairs(subs: list[Submission], stubs: dict[str, str],
                  threshold: float = THRESHOLD) -> list[Pair]:
    """Pairs of submissions at or above ``threshold`` similarity, per exercise, most alike first.

    ``stubs`` maps an exercise name to its stub's source (its code is ignored). Submissions whose
    normalised code is identical form a group, reported as pairs with its first member (not
    every pair of the group); the other pairs are scored by their shared fingerprints.
    """
    pairs = []
    if threshold > 1:
        return pairs
    for exercise, stub in sorted(stubs.items()):
        boilerplate = np.array(sorted(_fingerprint(stub, exercise).hashes), dtype=np.int64)
        groups: dict[str, list] = {}
        for index, sub in enumerate(subs):
            source = sub.sources.get(exercise)
            if source is None:
                continue
            fingerprint = _fingerprint(source, f"{exercise}-{index}", boilerplate)
            if fingerprint.token_coverage >= MIN_TOKENS and fingerprint.hashes:
                groups.setdefault(fingerprint.filtered_code, []).append((sub, source, fingerprint))
        for members in groups.values():
            pairs += [_pair(exercise, members[0], other, 1.0) for other in members[1:]]
        leaders = [members[0] for members in groups.values()]
        for a, b in itertools.combinations(leaders, 2):
            shared = len(a[2].hashes & b[2].hashes)
            similarity = shared / max(len(a[2].hashes), len(b[2].hashes))
            if similarity >= threshold:
                pairs.append(_pair(exercise, a, b, similarity))
    return sorted(pairs, key=lambda p: (-p.similarity, p.exercise, p.first, p.second))


def _pair(exercise: str, a: tuple, b: tuple, similarity: float) -> Pair:
    return Pair(exercise, who(a[0]), who(b[0]), similarity, ((a[1], a[2]), (b[1], b[2])))


def flags_for(pairs: list[Pair], student: str) -> list[tuple[str, str]]:
    """One ``similar`` flag per exercise for ``student``: the most alike other, and how many
    more there are."""
    flags = []
    for exercise in sorted({p.exercise for p in pairs}):
        mine = [p for p in pairs if p.exercise == exercise and student in (p.first, p.second)]
        if mine:
            top = mine[0]
            other = top.second if top.first == student else top.first
            more = f" and {len(mine) - 1} other(s)" if len(mine) > 1 else ""
            flags.append(("similar", f"{top.label} with {other}{more}"))
    return flags


def who(sub: Submission) -> str:
    return f"{sub.student} ({sub.student_id})" if sub.student_id else sub.student


def pair_markdown(pair: Pair) -> str:
    """One pair: the score and the matching code side by side (an HTML table in Markdown)."""
    import html

    lines = [f"# {pair.exercise}: {pair.first} and {pair.second}", "",
             f"Similarity {pair.similarity:.0%} (the smaller of the two shares of code "
             "fingerprints, beyond the stub, that the two submissions have in common; names, "
             "strings, comments and layout are ignored). The stretches below are where they "
             "match (they may include the stub's lines in between). A flag for a closer look, "
             "not a verdict: points are unchanged.", "",
             f"<table><tr><th>{html.escape(pair.first)}</th><th>{html.escape(pair.second)}</th>"
             "</tr>"]
    for left, right in pair.blocks:
        lines.append(f"<tr><td><pre>{html.escape(left)}</pre></td>"
                     f"<td><pre>{html.escape(right)}</pre></td></tr>")
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def write_report(pairs: list[Pair], folder: Path, threshold: float = THRESHOLD) -> Path:
    """``folder/similarity/index.md`` (every pair, most alike first) and a file with the
    matching lines side by side for each of the first ``MAX_DETAILED`` pairs.

    For the instructor: do not hand this folder to students.
    """
    folder = Path(folder) / "similarity"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Similar submissions", "",
             f"Pairs whose code for an exercise is at least {threshold:.0%} alike beyond the "
             "stub (for the instructor; points are unchanged).", ""]
    if not pairs:
        lines.append("No pair reaches the threshold.")
    else:
        lines += ["| exercise | first | second | similarity | details |", "|---|---|---|---|---|"]
    for number, pair in enumerate(pairs):
        name = safe_filename(f"{pair.exercise.split('_')[0]}_{pair.first}__{pair.second}") + ".md"
        if number < MAX_DETAILED:
            write_atomic(folder / name, pair_markdown(pair), keep_backup=False)
        link = f"[{name}]({name})" if number < MAX_DETAILED else "(not detailed)"
        lines.append(f"| {pair.exercise} | {pair.first} | {pair.second} | "
                     f"{pair.similarity:.0%} | {link} |")
    index = folder / "index.md"
    write_atomic(index, "\n".join(lines) + "\n", keep_backup=False)
    return index
