"""The measuring half of tests/bin/bench: runs inside its D-Bus session and Xvfb display."""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

target, runs, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SETTLE_SECONDS = 5


def window_viewable(title):
    out = subprocess.run(["xwininfo", "-name", title], capture_output=True, text=True).stdout
    return "IsViewable" in out


def tree_rss_kib(root):
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def launch(binary, title):
    """Starts `binary` and returns (process, milliseconds to a viewable window), or None if it died first."""
    log = tempfile.TemporaryFile()
    t0 = time.monotonic()
    proc = subprocess.Popen([binary], stdout=subprocess.DEVNULL, stderr=log)
    while not window_viewable(title):
        if proc.poll() is not None or time.monotonic() - t0 > 60:
            proc.kill()
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
            print(f"{os.path.basename(binary)} died before its window (status {proc.wait()}): {tail}")
            return None
        time.sleep(0.005)
    return proc, (time.monotonic() - t0) * 1000


def measure(binary, title):
    starts, memories, failures = [], [], 0
    while len(starts) < runs:
        launched = launch(binary, title)
        if launched is None:
            failures += 1
            if failures > 3:
                raise SystemExit(f"{binary} keeps dying before its window")
            continue
        proc, elapsed = launched
        starts.append(elapsed)
        time.sleep(SETTLE_SECONDS)
        memories.append(tree_rss_kib(proc.pid) / 1024)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    return starts, memories


results = {
    "bare Tauri 2 app": measure(os.path.join(target, "bare-app"), "Bare"),
    "Gatehouse": measure(os.path.join(target, "gatehouse"), "Gatehouse"),
}
print(f"\n{profile} builds, {runs} runs each; medians (all runs in brackets)")
print(f"{'':18} {'first window (ms)':>20} {'settled RSS (MiB)':>20}")
for name, (starts, memories) in results.items():
    print(f"{name:18} {statistics.median(starts):20.0f} {statistics.median(memories):20.1f}")
    print(f"{'':18} {str([round(s) for s in starts]):>20} {str([round(m) for m in memories]):>20}")
(bs, bm), (gs, gm) = results["bare Tauri 2 app"], results["Gatehouse"]
print(f"Gatehouse / bare:  window {statistics.median(gs) / statistics.median(bs):.2f}x, "
      f"memory {statistics.median(gm) / statistics.median(bm):.2f}x")
