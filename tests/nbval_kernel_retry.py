"""A kernel start that is retried: loaded by `make notebooks` with `-p tests.nbval_kernel_retry`.

nbval starts one kernel per chapter and waits for its first reply. On a busy two-core machine a kernel
once stayed silent for the whole minute nbval allows, and every cell of that chapter failed without
running. A silent kernel is shut down and a fresh one started (new process, new ports), up to
`ATTEMPTS` times; a kernel that answers is used as before, and a chapter's cells are never re-run.
"""

import logging

import nbval.kernel

ATTEMPTS = 3
_start_new_kernel = nbval.kernel.start_new_kernel
log = logging.getLogger(__name__)


def start_new_kernel(*args, **kwargs):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _start_new_kernel(*args, **kwargs)
        except RuntimeError as error:  # "Kernel didn't respond in N seconds"; nbval shut it down
            if attempt == ATTEMPTS:
                raise
            log.warning("kernel start %d of %d failed (%s); starting a fresh kernel", attempt, ATTEMPTS, error)


nbval.kernel.start_new_kernel = start_new_kernel
