"""Writes pickle_corpus.hex: pickles that real Python writes, one per line as `name hex`.

The seeds of the pickle decoder's fuzz test (tests/pickle_fuzz.rs) and of its unit tests.
Regenerate with Python 3.12 or newer: `python3 make_pickle_corpus.py > pickle_corpus.hex`.
"""

import os
import pickle
import sys


class Instance:
    def __init__(self):
        self.x = 1


class RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


shared = [1, "two"]
recursive = []
recursive.append(recursive)

DATA = {
    "none": None,
    "scalars": [True, False, 0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -(2**31),
                2**63 - 1, -(2**63), 2**64 - 1, 2**70, -(2**100), 2**200, 0.5, -0.0,
                float("inf"), 1e300],
    "strings": ["", "x", "é€😀", "a" * 300, b"", b"y", b"\x00" * 300],
    "echo": {"a": [1, 2.5, "x", None, b"y", (True,)]},
    "nested": {1: "one", (2, 3): frozenset({4}), "set": {5, 6}, "e": (), "l": [[], [[]]],
               "t": (1, (2, (3, None))), "d": {"k": {"k": {}}}},
    "shared": [shared, shared, (shared,)],
    "recursive": recursive,
    "bytearray": bytearray(b"q"),
    "many": list(range(1200)),
    "dict_many": {str(i): i for i in range(1100)},
}

HOSTILE = {
    "instance": Instance(),
    "os_system": os.system,
    "runs_code": RunsCode(),
}

out = sys.stdout
for name, obj in DATA.items():
    protos = (4, 5) if name in ("many", "dict_many") else range(pickle.HIGHEST_PROTOCOL + 1)
    for proto in protos:
        out.write(f"{name}_p{proto} {pickle.dumps(obj, protocol=proto).hex()}\n")
for name, obj in HOSTILE.items():
    for proto in (2, 4, 5):
        out.write(f"hostile_{name}_p{proto} {pickle.dumps(obj, protocol=proto).hex()}\n")
