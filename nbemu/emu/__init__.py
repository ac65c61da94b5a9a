"""emu: the hardware side of nbemu — vCPUs on Unicorn, guest memory, the run loop, CLI."""
