"""Firmware for Cortex-M boards: what it needs of a compiled model (image.py), the project folder (project.py),
building it with make and arm-none-eabi-gcc and running it in qemu-system-arm (qemu.py), exact instruction counts
(plugin.py, profile.py) and ELF sizes (elfsize.py). Import the submodules; this package imports nothing itself,
so ``import mcuq`` stays light."""
