# mcuq: `make demo` runs the bundled example end to end, `make test` runs the test suite.
# Both install what is missing: system packages via apt-get (when run as root or with passwordless sudo),
# then a virtual environment in .venv with torch's CPU build and `pip install -e .[test,examples,plot,onnx,qat]`.
# Set-up prints one line per step; the tools' own output is shown only when a step fails.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mcuq-installed
# host C compiler for tests; the Cortex-M toolchain and QEMU for firmware builds
APT_PACKAGES := gcc make python3-venv gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang-format cppcheck

.PHONY: all setup system-packages lint-tools plugin demo test test-kernel-paths bench bench-ptq bench-lowbit bench-qat fuzz fuzz-ops fuzz-quant lint lint-c format format-c clean

all: test

# $(call quietly,COMMAND): runs COMMAND with its output held back. When COMMAND fails, prints that output and
# fails with its status; when it succeeds, prints only the lines that start with "ERROR" (pip reports a broken
# dependency set that way and still exits 0).
quietly = out=$$(mktemp) && if ( $(1) ) >"$$out" 2>&1; then grep '^ERROR' "$$out" >&2; rm -f "$$out"; \
  else rc=$$?; cat "$$out" >&2; rm -f "$$out"; echo "mcuq: set-up step failed (status $$rc)" >&2; exit $$rc; fi
# setuptools notes on every editable install of a package-dir layout that a folder named like the package could
# shadow it: that folder is the package here.
PIP_ENV := PYTHONWARNINGS='ignore:Editable installation'
PIP_SPEC := '.[test,examples,plot,onnx,qat]'
# torch's CPU build, installed before the extras so that `torch>=2.1` is already met: from pip's find-links when a
# wheel lies there (this machine's /opt/wheels), else from PyTorch's CPU index. PyPI's own torch is a CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

system-packages:
	@missing=""; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	$(PYTHON) -c "import venv, ensurepip" >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing="$$missing gcc-arm-none-eabi libnewlib-arm-none-eabi"; \
	command -v qemu-system-arm >/dev/null 2>&1 || missing="$$missing qemu-system-arm"; \
	command -v clang-format >/dev/null 2>&1 || missing="$$missing clang-format"; \
	command -v cppcheck >/dev/null 2>&1 || missing="$$missing cppcheck"; \
	if [ -z "$$missing" ]; then echo "mcuq: system packages: all present"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "mcuq: missing system packages:$$missing (not root and no passwordless sudo: install them yourself; tests that need them skip)"; \
	  exit 0; fi; \
	echo "mcuq: installing system packages:$$missing"; \
	$(call quietly,$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	@test -x $(BIN)/python || { echo "mcuq: creating $(VENV)"; $(call quietly,$(PYTHON) -m venv $(VENV)); }
	@echo "mcuq: upgrading pip in $(VENV)"
	@$(call quietly,$(BIN)/python -m pip install -q --upgrade pip)
	@$(BIN)/python -c "import torch" >/dev/null 2>&1 || { echo "mcuq: installing $(TORCH_SPEC) (CPU build)"; \
	  $(call quietly,$(BIN)/python -m pip install -q --no-index --no-deps $(TORCH_SPEC) || \
	    $(BIN)/python -m pip install -q --no-deps $(TORCH_SPEC) --index-url $(TORCH_CPU_INDEX)); }
	@echo "mcuq: installing Python packages: pip install -e $(PIP_SPEC)"
	@$(call quietly,$(PIP_ENV) $(BIN)/python -m pip install -q -e $(PIP_SPEC))
	@touch $@

setup: $(STAMP)

# The QEMU TCG plugin that counts executed instructions exactly (mcuq bench), built from source with the host cc.
# mcuq also builds it on first use; the build is cached by content.
plugin: setup
	@if command -v qemu-system-arm >/dev/null 2>&1; then \
	  $(BIN)/python -c "from mcuq.firmware.plugin import plugin_library; print('plugin:', plugin_library())"; \
	else echo "plugin: qemu-system-arm is not installed (make setup installs it as root)"; fi

demo: setup
	$(BIN)/python examples/demo.py

# pytest exits 5 when it collects no test: that fails this target like any other non-zero status.
test: setup
	$(BIN)/python -m pytest -q -ra

# The full table of the kernel-path tests (make test runs a default share): portable, DSP and MVE builds of the same
# layers in QEMU, bit for bit, with more shapes, random sweeps, the bigger models and Cortex-M3/M7/M33 builds.
test-kernel-paths: setup
	MCUQ_KERNEL_PATHS=full $(BIN)/python -m pytest -q -ra tests/qemu/test_kernel_paths.py

bench: plugin
	$(BIN)/python benchmarks/shared_models.py --write docs/benchmarks.md

# mcuq's post-training quantization against the TFLite converter and AI Edge Quantizer on the same calibration data
# (the PTQ section of docs/benchmarks.md). TensorFlow and AI Edge Quantizer go into build/bench-ptq-venv, made on
# first use, never into $(VENV).
bench-ptq: setup
	$(BIN)/python benchmarks/ptq.py --write docs/benchmarks.md

# Weights at 8/4/2/1 bits, 16x8 activations and mixed precision chosen under flash budgets (exact solver and greedy
# baseline on the same sensitivities), with metric, weight and arena bytes and M4/M55 instructions (QEMU), against
# AI Edge Quantizer's int4 recipes (the section "Low-bit and mixed precision" of docs/benchmarks.md and
# docs/lowbit_pareto.svg). Uses bench-ptq's float models and environment (build/bench-ptq, build/bench-ptq-venv).
bench-lowbit: setup plugin
	$(BIN)/python benchmarks/lowbit.py --write docs/benchmarks.md

# Quantization-aware training (mcuq.qat) against post-training quantization on digits at 8/4/2/1-bit weights: the
# compiled C's accuracy, weight bytes and training time (the section "QAT" of docs/benchmarks.md). CPU torch.
bench-qat: setup
	$(BIN)/python benchmarks/qat.py --write docs/benchmarks.md

# Long fuzz runs (make test runs a few hundred of each): byte-level mutants of digits, KWS and ResNet through the
# whole pipeline (C under ASan/UBSan, against run_graph and the oracle), random one-op configurations against
# the oracle, and hostile float models and calibration data through the quantizer (mcuq.quantize and mcuq quantize).
# `make fuzz` also mutates ONNX models structurally (tests/onnx/fuzz_onnx.py: every mutant loads or fails with one
# line; with --compile, the ones that load are quantized, compiled and run).
# Seeded: FUZZ_SEED=S reruns the same run; failing inputs are saved under build/fuzz/.
FUZZ_N ?= 10000
FUZZ_OPS_N ?= 3000
FUZZ_QUANT_N ?= 2000
FUZZ_ONNX_N ?= 2000
FUZZ_SEED ?= 0
fuzz: setup
	$(BIN)/python -m tests.fuzz.run mutants --n $(FUZZ_N) --seed $(FUZZ_SEED)
	$(BIN)/python -m tests.onnx.fuzz_onnx --n $(FUZZ_ONNX_N) --seed $(FUZZ_SEED) --compile

fuzz-ops: setup
	$(BIN)/python -m tests.fuzz.run ops --n $(FUZZ_OPS_N) --seed $(FUZZ_SEED)

fuzz-quant: setup
	$(BIN)/python -m tests.fuzz.run quant --n $(FUZZ_QUANT_N) --seed $(FUZZ_SEED)

C_SOURCES = $(wildcard runtime_c/include/*.h runtime_c/src/*/*.c runtime_c/src/*/*.h)

# clang-format (the one C dialect, .clang-format) and cppcheck, installed with apt-get when missing and permitted.
lint-tools:
	@missing=""; \
	command -v clang-format >/dev/null 2>&1 || missing="$$missing clang-format"; \
	command -v cppcheck >/dev/null 2>&1 || missing="$$missing cppcheck"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "mcuq: missing$$missing (not root and no passwordless sudo: install them yourself)"; exit 1; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null

lint: setup lint-c
	$(BIN)/ruff check mcuq tests examples benchmarks
	$(BIN)/ruff format --check mcuq tests examples benchmarks

# The runtime in one C dialect (clang-format --dry-run) and free of cppcheck's warning/style/portability findings.
# Right shifts of negative values are arithmetic on every supported compiler, as TFLite and gemmlowp assume.
lint-c: lint-tools
	clang-format --dry-run --Werror $(C_SOURCES)
	cppcheck --std=c99 --enable=warning,style,portability --error-exitcode=1 --quiet --inline-suppr \
	  --suppress=shiftNegativeLHS -I runtime_c/include runtime_c/src

format: setup format-c
	$(BIN)/ruff format mcuq tests examples benchmarks

format-c: lint-tools
	clang-format -i $(C_SOURCES)

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache digits_cnn_mcuq
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
