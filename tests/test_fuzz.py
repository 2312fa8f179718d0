"""A seeded fuzz run in the suite: mutants of every exported file through carol-generate's own command.
The deep run (20,000 mutants of the bundled model's files) is benchmarks/results/FUZZ.md."""
from carolgen.bench.fuzz import fuzz


def test_mutants_of_every_format_and_mode_are_generated_or_refused(every_mode):
    folder, rows = every_mode
    files = [folder / r.file for r in rows if r.status in ("accepted", "rejected")]
    assert len(files) == 9, [r.reason for r in rows]  # 5 TFLite modes, 4 ONNX
    document = fuzz(files, count=240, seed=11)
    assert document["failures"] == [], document["failures"][:5]
    sealed, trusted = document["tally"]["sealed"], document["tally"]["trust-file"]
    assert sum(sealed.values()) + sum(trusted.values()) == 240
    assert set(sealed) == {"refused"}, sealed  # a changed byte never gets past the digest
    assert trusted.get("refused", 0) + trusted.get("generated", 0) == sum(trusted.values())
