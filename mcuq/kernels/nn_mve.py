"""(being written: fast kernels, see mcuq/kernels/variants.py)."""
