"""A name held on the machine: one holder at a time, free again once it lets go."""

from __future__ import annotations

import os
import subprocess
import sys

from bharnet_ros.core.machine_hold import hold

NAME = f"bharnet-test-hold-{os.getpid()}"  # not a real run's


def test_a_held_name_is_refused_until_its_holder_lets_go():
    first = hold(NAME)
    assert first is not None
    assert hold(NAME) is None
    first.close()
    again = hold(NAME)
    assert again is not None
    again.close()


def test_a_process_that_dies_frees_its_name():
    code = f"import os; from bharnet_ros.core.machine_hold import hold; os._exit(0 if hold({NAME!r}) else 1)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    held = hold(NAME)
    assert held is not None
    held.close()
