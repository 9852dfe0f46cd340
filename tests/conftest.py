"""Shared fixtures of the fast test suite."""

import errno
import os

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks: one thread is fastest, and it does not fight other test workers."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def failing_replace(monkeypatch):
    """``failing_replace(when, err=ENOSPC)``: from then on ``os.replace(src, dst)`` raises
    ``OSError(err)`` where ``when(src, dst)`` (two strings) is true: a rename that fails
    after the files were written (a full disk, a read-only target)."""
    real = os.replace

    def install(when, err=errno.ENOSPC):
        def replace(src, dst):
            if when(str(src), str(dst)):
                raise OSError(err, os.strerror(err), str(dst))
            return real(src, dst)

        monkeypatch.setattr(os, "replace", replace)

    return install
