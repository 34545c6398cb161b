"""Settings of a training process that are about speed, not numbers: set once, before torch
runs its first operation, so the intra-op threads it starts later inherit them."""

from __future__ import annotations

import ctypes

import torch


def tune_for_training(threads: int | None) -> None:
    """Flush subnormals, then set torch's thread count, then keep freed memory.

    The order matters: the floating-point mode is per thread and torch's intra-op pool
    copies the main thread's when it starts (first parallel op); set afterwards, the pool's
    threads would keep computing with subnormals."""
    torch.set_flush_denormal(True)
    if threads:
        torch.set_num_threads(threads)
    _keep_freed_memory()


def subnormals_flushed() -> bool:
    """Whether this thread computes with subnormals as zero (provenance records it)."""
    return bool(torch.tensor(1e-40) * 1.0 == 0)


# Why flush: Adam's first moment of a weight whose gradient stays zero (a dead ReLU unit)
# decays by beta1 = 0.9 per update and spends ~150 updates in the subnormal range. After 6k
# Hopper steps of MBPO ~46k of SAC's 210k moments were subnormal, and arithmetic on them
# takes microcode assists on the Intel Xeon: the SAC update ran 8.3 ms instead of 6.8 (MBPO
# 1.13x faster end to end); the AMD EPYC hosts pay no such penalty (1.00x). Such a moment
# moves its weight by ~1e-35, below the weight's ulp, so the numbers stayed byte-identical:
# the smoke pipeline, MBPO Hopper seed 0 to 8k (Intel) and seed 2 against the reference set
# (AMD; docs/results.md, "Subnormals flushed"). It is not a bit-for-bit guarantee: it also
# applies to numpy and MuJoCo code on the same threads, where a subnormal would read as zero.


def _keep_freed_memory() -> None:
    """Keep freed blocks below 32 MB in the process instead of handing them back to the OS.

    glibc trims the top of its heap once 2x its (dynamic) mmap threshold is free, so the
    short-lived [2, 256, 256] activations of every SAC update were returned and faulted in
    again: ~250 minor page faults per update, 7-10% of its CPU time (0.06 faults with these
    settings; measured 2026-12-02; the AMD EPYC AVX-512 host gains nothing, docs/results.md).
    Blocks of 32 MB and more (replay buffers) still come from mmap and go back when freed.
    No-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc.mallopt(m_trim_threshold, 256 << 20)
    libc.mallopt(m_mmap_threshold, 32 << 20)
