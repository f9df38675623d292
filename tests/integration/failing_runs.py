"""Shared by bad_input_test.py and write_failure_test.py: what a crash looks like on stderr, and a file-size
limit for a child process."""
import resource
import signal

# On stderr, any of these means the program crashed or hit a bug instead of reporting bad input.
CRASH_SIGNS = ("terminate called", "Aborted", "core dumped", "Segmentation fault", "internal error",
               "HDF5-DIAG", "AddressSanitizer", "runtime error:")


def file_size_limit(limit):
    """A preexec_fn: the child may write files of at most `limit` bytes; SIGXFSZ is ignored, so the write(2)
    that would pass the limit fails with EFBIG ("File too large") as on a full quota."""
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return preexec
