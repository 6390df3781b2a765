"""A server stop while the model threads are inside TensorFlow ends cleanly: no
"terminate called after throwing an instance of ..." abort (status 134) at interpreter exit."""

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("exit_probe.py")


@pytest.mark.slow  # over ~5 s: left out of the fast loop
def test_exit_while_model_threads_run_tensorflow_does_not_abort():
    # Without the exit hook this aborted in about 3 runs of 4; three clean runs in a row.
    for _ in range(3):
        done = subprocess.run([sys.executable, str(PROBE), "2"], capture_output=True, text=True, timeout=120)
        output = done.stdout + done.stderr
        assert "leaving" in done.stdout, output[-2000:]
        assert "terminate called" not in output and "FATAL" not in output, output[-2000:]
        assert done.returncode in (0, 1), (done.returncode, output[-2000:])
