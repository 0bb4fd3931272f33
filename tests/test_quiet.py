"""Quiet start: TensorFlow's start-up lines are filtered from standard error, real messages are not.

In a started command: test_predict's oversized-poster test runs `filmgenre predict` (TensorFlow
loaded, one real error) and asserts its standard error is that one line, so a fresh process pays
TensorFlow's start-up once for both checks.
"""

from filmgenre import quiet

STARTUP = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796092735.643270   14181 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n",
    b"I0000 00:00:1796092736.119806   14181 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.\n",
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.\n",
    b"E0000 00:00:1796092764.837210   14181 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    b"E0000 00:00:1796166345.265623   15190 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. "
    b"Falling back to the default Eigen-based implementation if present.\n",
]
REAL = [b"Traceback (most recent call last):\n", b"E0000 00:00:1796092764.8 14181 op_kernel.cc:1857] OP_REQUIRES failed\n",
        b"W0000 00:00:1796092764.8 14181 loop_optimizer.cc:93] Skipping loop optimization\n",
        b"UserWarning: something real\n", b"  12/4418 films, 3 s elapsed\r"]


def test_only_the_startup_lines_are_dropped():
    assert not any(quiet.keep(line) for line in STARTUP)
    assert all(quiet.keep(line) for line in REAL)

