#!/usr/bin/env python3
"""bench/ab.py: two devbox builds compared on the same machine, runs interleaved.

  bench/ab.py OLD/build/devbox NEW/build/devbox [--runs N] [--cold] [--image TAR]

Each build gets a DEVBOX_HOME and a project of its own under a temporary directory, with the
e2e test image imported (build/cache/e2e-rootfs.tar unless --image).  Warm (the default): N
`devbox exec true` each, alternating which goes first, with DEVBOX_EXEC_TIMING=1; prints p50
and p90 of the client's wall time and the median of each timing phase.  --cold: N times stop
then `devbox exec true`, and the medians of the supervisor's boot steps and of the guest init's
(its console's "boot: ready at" line, on the guest's clock).  make bench measures
against floors; this measures a change, which on these noisy machines only interleaving shows.
"""
import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--image", default=os.path.join(here, "build/cache/e2e-rootfs.tar"))
    a = ap.parse_args()
    if not os.path.exists(a.image):
        sys.exit("ab: no image at %s (make bench or tests/e2e/mkimage.sh makes one)" % a.image)
    work = tempfile.mkdtemp(prefix="dbx-ab.")
    builds = {"old": os.path.abspath(a.old), "new": os.path.abspath(a.new)}
    env0 = dict(os.environ)
    debs = sorted(f for f in os.listdir(os.path.join(here, "build/cache"))
                  if f.startswith("linux-image-") and f.endswith(".deb")) \
        if os.path.isdir(os.path.join(here, "build/cache")) else []
    if debs and "DEVBOX_KERNEL_DEB" not in env0:
        env0["DEVBOX_KERNEL_DEB"] = os.path.join(here, "build/cache", debs[-1])

    def env(k, **extra):
        return dict(env0, DEVBOX_HOME=os.path.join(work, k, "h"), **extra)

    def run(k, *args, **extra):
        t = time.monotonic()
        p = subprocess.run([builds[k], "-C", os.path.join(work, k, "repo"), *args],
                           env=env(k, **extra), capture_output=True)
        return (time.monotonic() - t) * 1000, p

    try:
        for k in builds:
            os.makedirs(os.path.join(work, k, "repo"))
            subprocess.run(["git", "init", "-q", os.path.join(work, k, "repo")], check=True)
            subprocess.run([builds[k], "image", "import", a.image, "default"], env=env(k),
                           check=True, capture_output=True)
            _, p = run(k, "exec", "true")
            if p.returncode != 0:
                sys.exit("ab: %s does not run a command: %s" % (k, p.stderr.decode().strip()))
        wall = {k: [] for k in builds}
        phases = {k: collections.defaultdict(list) for k in builds}
        for i in range(a.runs):
            for k in (("old", "new") if i % 2 == 0 else ("new", "old")):
                if a.cold:
                    run(k, "stop")
                    ms, p = run(k, "exec", "true")
                else:
                    ms, p = run(k, "exec", "true", DEVBOX_EXEC_TIMING="1")
                    for key, v in re.findall(r"(\w+)=(\d+)", p.stderr.decode()):
                        phases[k][key].append(int(v) / 1000)
                wall[k].append(ms)
        for k in builds:
            xs = sorted(wall[k])
            print("%s  %s" % (k, builds[k]))
            print("  p50 %.1f ms  p90 %.1f ms  (%d runs)"
                  % (statistics.median(xs), xs[int(len(xs) * 0.9)], len(xs)))
            if phases[k]:
                print("  phases (median ms): " +
                      " ".join("%s %.2f" % (key, statistics.median(v))
                               for key, v in phases[k].items()))
            if a.cold:
                pdir = os.path.join(work, k, "h", "state", "projects",
                                    os.listdir(os.path.join(work, k, "h", "state", "projects"))[0])
                with open(os.path.join(pdir, "supervisor.log"), errors="replace") as f:
                    ready = [l.split(" ms: ", 1)[1] for l in f if " ready (" in l and " ms: " in l]
                steps = collections.defaultdict(list)
                for l in ready[-a.runs:]:
                    for key, v in re.findall(r"([a-z][a-z ]*?) ([0-9.]+)(?=,| ms)", l):
                        steps[key].append(float(v))
                print("  boot steps (median ms): " +
                      " ".join("%s %.1f" % (key, statistics.median(v)) for key, v in steps.items()))
                # the guest's own marks (init-boot.c), on its clock: no host noise before the
                # kernel runs
                with open(os.path.join(pdir, "console.log"), errors="replace") as f:
                    lines = [l for l in f if "boot: ready at " in l]
                marks = collections.defaultdict(list)
                for l in lines[-a.runs:]:
                    m = re.search(r"ready at ([0-9.]+) ms: (.*) ms", l)
                    if not m:
                        continue
                    marks["ready at"].append(float(m.group(1)))
                    pairs = re.findall(r"([A-Za-z][A-Za-z ]*?) ([0-9.]+)(?:,|$)", m.group(2))
                    for key, v in pairs:
                        marks[key].append(float(v))
                if marks:
                    print("  guest boot (median ms): " +
                          " ".join("%s %.1f" % (key, statistics.median(v))
                                   for key, v in marks.items()))
    finally:
        for k in builds:
            subprocess.run([builds[k], "-C", os.path.join(work, k, "repo"), "stop"], env=env(k),
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
