"""Board shells: what a board needs around the accelerator core (host link, clocks, reset, LEDs).

So far: :mod:`hwgen.shell.uart`, the UART of the host link (8N1), with its reference model."""
