"""guest: what a NetBSD program sees — the ELF loader, the process image and per-arch ABIs."""
