"""Fuzzing through the whole pipeline: byte-level mutants of real models (``mutate``, ``judge``) and random
single-op configurations compared with the oracle (``opgen``, ``opcheck``). ``run`` drives long runs
(``make fuzz``, ``make fuzz-ops``); the ``test_*`` modules are the bounded, seeded runs of ``make test``."""
