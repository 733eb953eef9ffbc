"""A seeded run of random one-op configurations for every op kind, generated C against the oracle bit for bit
(``make fuzz-ops`` runs thousands)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from .opcheck import BIT_EXACT
from .opgen import KINDS
from .run import run_ops, save_ops
from .summary import ops_summary

N_CONFIGS = 30 * len(KINDS)  # 630 (about a fifth 16x8, a few packed), about 20-30 s on 2 cores
SEED = 0


def test_random_single_ops_are_bit_exact(tmp_path: Path) -> None:
    res = run_ops(N_CONFIGS, SEED, log_dir=tmp_path / "logs")
    assert [r["index"] for r in res] == list(range(N_CONFIGS))
    # both refusing a configuration is agreement; any other verdict but bit-exact is a finding
    bad = [r for r in res if r["verdict"] not in (*BIT_EXACT, "both_refused")]
    if bad:
        saved = save_ops(bad, tmp_path / "ops")
        pytest.fail("\n".join([*ops_summary(res, 0), f"failing configurations saved in {saved}"]), pytrace=False)
    per_kind = Counter(r["kind"] for r in res if r["verdict"] in BIT_EXACT)
    assert set(per_kind) == set(KINDS) and min(per_kind.values()) >= 25, per_kind
