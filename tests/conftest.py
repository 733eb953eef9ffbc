from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    return Path(os.environ.get("MCUQ_MODELS", ROOT.parent / "shared" / "models"))


@pytest.fixture(scope="session")
def shared_models() -> Path:
    d = models_dir()
    if not (d / "mlperf_tiny").is_dir():
        pytest.skip(f"shared models not found at {d} (set MCUQ_MODELS)")
    return d


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ instead of comparing with them",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True under ``pytest --update-golden``: golden-file tests write what they would compare."""
    return bool(request.config.getoption("--update-golden"))


def have_arm_toolchain() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


# Tests build the generated C with -fsanitize=address,undefined unless a test says otherwise.
os.environ.setdefault("MCUQ_SANITIZE", "1")
