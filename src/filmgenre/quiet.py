"""Quiet start: TensorFlow's start-up lines kept off a CPU machine's terminal, real messages kept.

TensorFlow and absl write to file descriptor 2 from C++ before any Python setting applies
(``TF_CPP_MIN_LOG_LEVEL`` does not reach the lines printed before absl's logging starts): the
"absl::InitializeLog" notice, "Could not find cuda drivers", the CPU-instructions notice and
an **E**-level "failed call to cuInit" on a machine with no GPU (and, at the LSTM's first step,
an E-level notice that oneDNN runs booleans only with AVX-512). A user reads errors where
nothing is wrong. ``start`` routes descriptor 2 through a filter that drops exactly those
lines and passes everything else (warnings, errors, tracebacks, progress lines) through; child
processes inherit it. ``filmgenre --verbose`` leaves descriptor 2 alone.
"""

import atexit
import os
import re
import sys
import threading

STARTUP_LINES = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:. ]+\d+ (cudart_stub|cpu_feature_guard|port)\.cc:\d+\] "
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    rb"|E\d{4} [\d:. ]+\d+ cuda_(platform|driver|executor)\.cc:\d+\] failed call to cuInit"
    rb"|W\d{4} [\d:. ]+\d+ gpu_device\.cc:\d+\] Cannot dlopen some GPU libraries"
    # E-level, though nothing is wrong: a CPU without AVX-512 runs a boolean op (the LSTM's mask) in Eigen
    rb"|E\d{4} [\d:. ]+\d+ util\.cc:\d+\] oneDNN supports DT_BOOL only on platforms with AVX-512)")


def keep(line: bytes) -> bool:
    """Whether a line of standard error is worth showing (not one of TensorFlow's start-up lines)."""
    return not STARTUP_LINES.match(line)


def _forward(read_end: int, target: int) -> None:
    pending = b""
    while chunk := os.read(read_end, 1 << 16):
        pending += chunk
        # complete lines are filtered; a progress line ending in "\r" goes out at once
        while (cut := max(pending.rfind(b"\n"), pending.rfind(b"\r"))) >= 0:
            ready, pending = pending[:cut + 1], pending[cut + 1:]
            out = b"".join(line for line in ready.splitlines(keepends=True) if keep(line))
            if out:
                os.write(target, out)
    if pending and keep(pending):
        os.write(target, pending)


def start() -> None:
    """Filter this process's (and its children's) standard error from now until it exits."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own INFO and WARNING lines
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, terminal), daemon=True)
    forwarder.start()

    def stop() -> None:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end in this process: the forwarder drains and ends
        forwarder.join(timeout=5)

    atexit.register(stop)
