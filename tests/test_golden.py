"""The golden test: the bundled model's greedy text, committed, on every installed backend.

Backends are otherwise compared with each other, so a change to the encoding or the sampler that moves
every backend together would go unnoticed; this test compares them with text written down before.
"""
import json
from pathlib import Path

import pytest

import carolgen
from carolgen.checkpoint import file_sha256
from carolgen.generate import BUNDLED
from carolgen.keras_backend import register_keras
from carolgen.runtime.backends import BACKENDS
from carolgen.runtime.generate import load

GOLDEN = json.loads(Path(__file__).with_name("golden.json").read_text())
register_keras()
INSTALLED = [b for b in BACKENDS.values() if b.installed and b.formats[0] in BUNDLED]


def test_golden_text_belongs_to_the_bundled_model():
    assert GOLDEN["checkpoint_sha256"] == file_sha256(carolgen.DEFAULT_CHECKPOINT), \
        "the bundled model changed: regenerate deliberately with python tests/regenerate_golden.py"


@pytest.mark.parametrize("backend", INSTALLED, ids=lambda b: b.name)
def test_every_backend_writes_the_golden_text(backend):
    generator = load(carolgen.MODELS_DIR / BUNDLED[backend.formats[0]], backend=backend.name)
    for prime, expected in GOLDEN["texts"].items():
        assert generator.generate(prime, GOLDEN["length"], temperature=0) == expected, (backend.name, prime)
