"""Every training claim judged against altered copies of its committed result files: a verdict
that does not move when the runs it reads move is a defect (claims.perturb.file_reachable).

Not in ``-m fast`` or ``-m unit`` (about 4 s for the committed results); the full suite and CI run it.
"""

from __future__ import annotations

import pytest

from claims import perturb, stats
from claims.registry import registry
from claims.verdict import HOLDS, REFUTED
from training import metrics, results
from training.run import needed_recipes


def _with_results():
    """The training claims whose result files are all committed (the others are pending and
    covered by the stand-in perturbation of tests/test_verdicts.py)."""
    return [c for c in registry() if c.measure.get("statistic") == "training"
            and all(results.path_for(r).exists() for r in needed_recipes(c.measure))]


@pytest.mark.parametrize("subject", _with_results(), ids=lambda c: c.id)
def test_every_trained_claim_moves_with_its_result_files(subject) -> None:
    reached = perturb.file_reachable(subject)
    assert reached, f"{subject.id}: its result files could not be read"
    verdicts = set(reached.values())
    assert REFUTED in verdicts and len(verdicts) > 1, (
        f"{subject.id}: over {len(reached)} altered copies of its result files the verdict is only "
        f"ever {sorted(verdicts)}")
    # the two runs swapped may give the refutation, but one file altered must move it too
    alone = {v for k, v in reached.items() if not k.endswith(" swapped")}
    assert len(alone) > 1, f"{subject.id}: only swapping its two runs moves the verdict"


def test_a_verdict_that_ignores_the_files_is_caught(monkeypatch) -> None:
    claim = next(c for c in _with_results() if c.id == "mnist-10k.a3.above-99")
    monkeypatch.setattr(perturb, "decide", lambda c, m: stats.Decision(HOLDS, "", ""))
    assert set(perturb.file_reachable(claim).values()) == {HOLDS}


def test_an_alteration_moves_the_metric_by_what_it_says() -> None:
    claim = next(c for c in _with_results() if c.id == "mnist-10k.a3.above-99")
    original = metrics.loader()(claim.measure["recipe"])
    before = metrics.compute(claim.measure, load={claim.measure["recipe"]: original}.__getitem__)
    changed = {**original, "points": [perturb._copy(p) for p in original["points"]]}
    perturb._level(-0.01)(changed["points"][0])
    after = metrics.compute(claim.measure, load={claim.measure["recipe"]: changed}.__getitem__)
    assert after.values == pytest.approx([v - 0.01 for v in before.values])
    assert metrics.compute(claim.measure).values == before.values  # the original is untouched


@pytest.mark.parametrize("subject", _with_results(), ids=lambda c: c.id)
def test_a_claim_reads_only_the_recipes_it_says_it_needs(subject) -> None:
    """What ``needed_recipes`` names is what training trains before judging a claim and what
    the perturbation alters: a metric that reads another file would be judged on a run nobody
    made sure of (mnist-10k.title.each-above-99's ``recipes`` list was missed this way)."""
    read, load = [], metrics.loader()

    def recording(name: str):
        read.append(name)
        return load(name)
    metrics.compute(subject.measure, load=recording)
    assert set(read) <= set(needed_recipes(subject.measure)), sorted(set(read))
