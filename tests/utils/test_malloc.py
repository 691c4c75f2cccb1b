"""utils.malloc.keep_freed_memory: applied once on glibc, a no-op elsewhere."""
import sys
from types import SimpleNamespace

import pytest

from utils import malloc


def _fake_libc(result, calls):
    def mallopt(key, value):
        calls.append((key, value))
        return result
    return SimpleNamespace(mallopt=mallopt)


def test_applies_on_glibc_linux_and_is_idempotent(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc mallopt is Linux-only")
    calls = []
    monkeypatch.setattr(malloc, "_STATE", {"applied": False})
    monkeypatch.setattr(malloc.ctypes, "CDLL", lambda name: _fake_libc(1, calls))
    assert malloc.keep_freed_memory(trim_threshold=1 << 20, top_pad=4096) is True
    assert calls == [(malloc.M_MMAP_THRESHOLD, 32 * 1024 * 1024), (malloc.M_TRIM_THRESHOLD, 1 << 20),
                     (malloc.M_TOP_PAD, 4096)]
    assert malloc.keep_freed_memory() is True and len(calls) == 3          # once per process


def test_refused_settings_or_no_glibc_report_false(monkeypatch):
    monkeypatch.setattr(malloc, "_STATE", {"applied": False})
    monkeypatch.setattr(malloc.ctypes, "CDLL", lambda name: _fake_libc(0, []))
    if sys.platform.startswith("linux"):
        assert malloc.keep_freed_memory() is False
    monkeypatch.setattr(malloc.sys, "platform", "darwin")
    assert malloc.keep_freed_memory() is False


def test_the_real_glibc_accepts_the_settings():
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc mallopt is Linux-only")
    assert malloc.keep_freed_memory() is True
