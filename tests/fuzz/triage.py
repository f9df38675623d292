#!/usr/bin/env python3
"""Re-runs each artifact a fuzz campaign wrote (crash-*, oom-*, timeout-*, leak-*) alone and says where it fails.

    tests/fuzz/triage.py <target> [artifact_dir]     (default $MOPO_FUZZ_WORK/<target>, /tmp/mopo-fuzz/<target>)

Each file runs once through build-fuzz/tests/fuzz/mopo_fuzz_<target> ($MOPO_FUZZ_BUILD) with the options of
run_fuzzer.sh (leak checks, full stacks, the suppressions; ASAN_OPTIONS from the environment replaces
them, e.g. detect_leaks=0:allocator_may_return_null=1 for a fast pass over crash and OOM files). A line per file: what happened (passes now, or the
sanitizer's report kind), the first stack frame outside the sanitizer runtime with its library, and the mopo
function it happened under; then the counts. "inside HDF5" / "inside LibTorch" means that frame is in libhdf5 / libtorch /
libc10; anything else is mopo's to fix (docs/reliability.md#fuzzing).
"""
import collections
import os
import re
import subprocess
import sys

RUNTIME = re.compile(r"^(__asan|__lsan|__ubsan|__sanitizer|__interceptor|fuzzer::|malloc|calloc|realloc|free|"
                     r"operator new|operator delete|memcpy|memmove|memset|strlen|strdup|posix_memalign|aligned_alloc|__mem|__str)")


# Libraries whose frames say nothing about the cause: the sanitizer runtime, the C and C++ libraries (a
# std::string::reserve of a size LibTorch read is LibTorch's allocation).
PASS_THROUGH = ("libclang_rt", "libstdc++", "libc.so", "libm.so")


def parse_frame(line):
    """(number, function or None, library) of one stack-frame line of a sanitizer report, or None. Function
    names may hold spaces and parentheses ("operator new(unsigned long)"); the location is either a module
    with an offset, "(/lib/libtorch_cpu.so.1.13+0x4000d9c)", or a source file, "/work/x.hpp:12:3" (code
    compiled into the fuzz binary: mopo)."""
    m = re.match(r"\s*#(\d+) 0x[0-9a-f]+\s+(.*?)(?:\s+\(BuildId: [0-9a-f]+\))?\s*$", line)
    if not m:
        return None
    rest, func, module = m.group(2), None, None
    if rest.startswith("in "):
        body = rest[3:]
        mm = re.match(r"(.*) \(([^()]*\+0x[0-9a-f]+)\)$", body)
        if mm:
            func, module = mm.group(1), mm.group(2)
        else:
            mm = re.match(r"(.*) (/\S+?)(?::\d+)*$", body)
            func = mm.group(1) if mm else body
    else:
        module = rest.strip("()")
    lib = os.path.basename(module.rsplit("+0x", 1)[0]) if module else "mopo"
    return int(m.group(1)), func, "mopo" if "mopo_fuzz_" in lib else lib


def frames(report):
    """(function or None, library) of each frame of the report's first stack."""
    out = []
    for line in report.splitlines():
        f = parse_frame(line)
        if f is None:
            if out:
                break
            continue
        if f[0] == 0 and out:
            break
        out.append(f[1:])
    return out


def first_frame(report):
    """(function, library) of the first frame outside the sanitizer runtime and the C/C++ libraries; the function
    is the first named one of that library (HDF5 and LibTorch export only some of theirs)."""
    stack = [(f, lib) for f, lib in frames(report)
             if not (f and RUNTIME.match(f)) and not lib.startswith(PASS_THROUGH)]
    if not stack:
        return "?", "?"
    lib = stack[0][1]
    named = [f for f, l in stack if l == lib and f]
    return (named[0] if named else "?"), lib


def mopo_caller(report):
    """The innermost mopo:: function on the stack (which of mopo's calls the failure happened under)."""
    for f, _ in frames(report):
        if f and f.startswith("mopo::") and not f.startswith("mopo::fuzz::"):
            return f.split("(")[0]
    return "-"


def where_of(lib):
    if lib.startswith("libhdf5"):
        return "inside HDF5"
    if lib.startswith(("libtorch", "libc10")):
        return "inside LibTorch"
    return "mopo" if lib in ("mopo", "?") else lib


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    target = sys.argv[1]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    work = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.environ.get("MOPO_FUZZ_WORK", "/tmp/mopo-fuzz"),
                                                              target)
    binary = os.path.join(os.environ.get("MOPO_FUZZ_BUILD", os.path.join(root, "build-fuzz")), "tests", "fuzz",
                          "mopo_fuzz_" + target)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS",
                                           "detect_leaks=1:allocator_may_return_null=1:fast_unwind_on_malloc=0"),
               UBSAN_OPTIONS="print_stacktrace=1",
               LSAN_OPTIONS="suppressions=%s:print_suppressions=0" % os.path.join(root, "tests", "fuzz", "lsan.supp"))
    files = sorted(f for f in os.listdir(work) if re.match(r"(crash|oom|timeout|leak|slow-unit)-", f))
    counts = collections.Counter()
    for name in files:
        try:
            p = subprocess.run([binary, "-timeout=60", "-rss_limit_mb=2560", os.path.join(work, name)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                               timeout=300)
            out, code = p.stdout, p.returncode
        except subprocess.TimeoutExpired:
            out, code = "", "timeout"
        via = "-"
        if code == 0:
            kind, func, lib, where = "passes now", "", "", "no longer fails"
        else:
            via = mopo_caller(out)
            m = (re.search(r"SUMMARY: \w+Sanitizer: ([\w-]+)", out) or re.search(r"ERROR: libFuzzer: ([\w-]+)", out)
                 or re.search(r"==\d+==ERROR: \w+Sanitizer: ([\w-]+)", out))
            kind = m.group(1) if m else "exit %s" % code
            func, lib = first_frame(out)
            where = where_of(lib)
        counts[(where, kind, func, via)] += 1
        print("%-52s %-22s %-16s %s (%s) under %s" % (name, kind, where, func, lib, via), flush=True)
    print("\n%d files" % len(files))
    for (where, kind, func, via), n in counts.most_common():
        print("%4d  %-16s %-22s %-20s under %s" % (n, where, kind, func, via))


if __name__ == "__main__":
    main()
