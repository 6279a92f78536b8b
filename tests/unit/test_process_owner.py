"""Who owns a trial or a run: a process that exited (a zombie nobody reaped included) owns
nothing, so a killed tuner's trials are failed and re-run."""

import os
import subprocess
import time

from seqops.tracking import process_alive


def test_a_live_process_owns_and_an_exited_one_does_not() -> None:
    assert process_alive(os.getpid())
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert process_alive(child.pid)
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while process_alive(child.pid):  # a zombie until waited for: already not alive
        assert time.monotonic() < deadline, "a killed, unreaped child still counts as alive"
        time.sleep(0.05)
    child.wait()
    assert not process_alive(child.pid)
