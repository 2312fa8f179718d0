"""A seeded fuzz run in the suite: mutants of every exported file through carol-generate's own command.
The deep run (20,000 mutants of the bundled model's files) is benchmarks/results/FUZZ.md."""
from carolgen.bench.fuzz import fuzz


def test_mutants_of_every_format_and_mode_are_generated_or_refused(every_mode):
    folder, rows = every_mode
    files = [folder / r.file for r in rows if r.status in ("accepted", "rejected")]
    assert len(files) == 9, [r.reason for r in rows]  # 5 TFLite modes, 4 ONNX
    document = fuzz(files, count=240, seed=11)
    assert document["failures"] == [], document["failures"][:5]
    sealed = document["tally"]["sealed"]
    trusted = [document["tally"][f"trust-file, {runner}"] for runner in ("interpreter", "numpy backend")]
    assert sum(sealed.values()) + sum(sum(t.values()) for t in trusted) == 240
    assert set(sealed) == {"refused"}, sealed  # a changed byte never gets past the digest
    for tally in trusted:  # the interpreters and the numpy backend's readers each meet damage, and survive it
        assert sum(tally.values()) >= 10 and tally.get("refused", 0) + tally.get("generated", 0) == sum(tally.values())
