"""`kzoo` in a process a test can kill: `python killed_job.py ARGS…` runs `kzoo ARGS…`.

With KZOO_TEST_KILL_AT=NAME (or NAME:N) set, the process kills itself (SIGKILL, as the OOM killer or a preempted
machine would) just before it renames a finished file or folder called NAME into place (the N-th time): inside
a backup's commit, between the two renames that replace `best/`, inside the final save.
"""

import os
import signal
import sys


def kill_before_renaming(target, occurrence=1):
    """Patch `os.replace` (kzoo's atomic writes commit with it) to SIGKILL this process before `target` lands
    for the `occurrence`-th time."""
    rename, seen = os.replace, [0]

    def replace_or_die(source, destination):
        if os.path.basename(os.fspath(destination)) == target:
            seen[0] += 1
            if seen[0] == occurrence:
                os.kill(os.getpid(), signal.SIGKILL)
        return rename(source, destination)

    os.replace = replace_or_die


if __name__ == "__main__":
    if os.environ.get("KZOO_TEST_KILL_AT"):
        name, _, count = os.environ["KZOO_TEST_KILL_AT"].partition(":")
        kill_before_renaming(name, int(count or 1))
    from kzoo.cli import main  # after the patch: kzoo's modules see it

    sys.exit(main(sys.argv[1:]))
