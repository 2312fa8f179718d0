"""Write tests/golden.json: 200 greedy characters of the bundled Keras checkpoint for fixed primes.

Run it deliberately, and only when the bundled model changes (the golden test says so):
    python tests/regenerate_golden.py
"""
import json
from pathlib import Path

import carolgen
from carolgen.checkpoint import file_sha256
from carolgen.keras_backend import register_keras
from carolgen.runtime.generate import load

GOLDEN = Path(__file__).with_name("golden.json")
PRIMES = ["", "snow falls soft on the "]
LENGTH = 200


def main():
    register_keras()
    generator = load(carolgen.DEFAULT_CHECKPOINT, backend="keras")
    texts = {prime: generator.generate(prime, LENGTH, temperature=0) for prime in PRIMES}
    document = {"checkpoint_sha256": file_sha256(carolgen.DEFAULT_CHECKPOINT), "length": LENGTH, "texts": texts}
    GOLDEN.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
