"""Run by test_server_exit: model threads busy in TensorFlow when the interpreter exits."""

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import salience  # noqa: E402,F401  (configures Keras and TensorFlow first)
import salience.model.loader  # noqa: E402
from components import model_resource, startup_timings  # noqa: E402

started = threading.Semaphore(0)


def load_model(spec, progress=None):
    import tensorflow as tf

    started.release()
    size = 64
    while True:  # trace and run a new graph each time, as a warm-up does
        size += 4
        graph = tf.function(lambda x: tf.reduce_sum(tf.linalg.matmul(x, x) / tf.norm(x)))
        graph(tf.random.normal([size, size]))


salience.model.loader.load_model = load_model
startup_timings.remember_timings = lambda spec, timings: None
registry = model_resource.ModelRegistry()
for name in ("a", "b", "c"):
    registry.start(f"busy {name}", warm_up=False)
for _ in range(3):
    started.acquire()
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
print("leaving", flush=True)
sys.exit(0)
