#!/usr/bin/env python3
"""make bench, images and network (called by bench/run.sh with its work dir; the environment
gives REG_ADDR, a docker-registry on loopback, DEBIAN_TAR and the devbox binary).

pull + root disk : `devbox pull` of a 3-layer image (a Debian bookworm rootfs split in two
                   gzip layers + a small zstd layer) from the loopback registry, fresh store
  floor          : `skopeo copy docker://… oci:…` + `umoci unpack --rootless` of the same image
second project   : first `devbox exec true` in a new project from the pulled image, against a
                   cold start of an existing project (the difference is what creating costs)
proxy download   : 100 MB over http through the allowlist proxy from inside the box (curl),
  floor          : the same download by curl on the host, and the agent channel's own ceiling
                   (100 MB from the box over `devbox exec` stdout)
proxy setup      : a small request through the proxy from inside the box, against on the host
dynamic programs : the Debian image's /bin/true (dynamically linked) started 100 times by a
                   shell in the box, and warm `devbox exec /bin/true`, with the box's programs at
                   fixed addresses ([security] aslr = auto under TCG) against randomized
                   (aslr = on); two rounds each, alternating, medians
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

work = sys.argv[1]
devbox = os.environ["DEVBOX_BIN"]
reg = os.environ["REG_ADDR"]
debian_tar = os.environ["DEBIAN_TAR"]
RUNS = int(os.environ.get("BENCH_PULL_RUNS", "3"))


def run(*argv, env=None, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, env=env, **kw)


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def blob(layout, data, media):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"mediaType": media, "digest": "sha256:" + d, "size": len(data)}


def split_rootfs(path):
    """The Debian rootfs as two tar layers: /usr and the rest (the order a build would use)."""
    a, b = io.BytesIO(), io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=a, mode="w", format=tarfile.PAX_FORMAT) as ta, \
            tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as tb:
        for m in src:
            dst = ta if (m.name.lstrip("./").startswith("usr") or m.name in (".", "./")) else tb
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    return a.getvalue(), b.getvalue()


def make_layout(layout):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    l1, l2 = split_rootfs(debian_tar)
    small = io.BytesIO()
    with tarfile.open(fileobj=small, mode="w", format=tarfile.PAX_FORMAT) as t:
        for i in range(200):
            data = ("file %d\n" % i).encode()
            ti = tarfile.TarInfo("srv/app/f%03d" % i)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    l3 = small.getvalue()
    layers, diff_ids = [], []
    for raw in (l1, l2, l3):
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        layers.append(blob(layout, gzip.compress(raw, 6), "application/vnd.oci.image.layer.v1.tar+gzip"))
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    c = blob(layout, json.dumps(cfg).encode(), "application/vnd.oci.image.config.v1+json")
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": c, "layers": layers}
    m = blob(layout, json.dumps(man).encode(), "application/vnd.oci.image.manifest.v1+json")
    m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    return sum(len(x) for x in (l1, l2, l3)), sum(x["size"] for x in layers)


def bench_pull():
    layout = os.path.join(work, "layout")
    raw, packed = make_layout(layout)
    ref = reg + "/bench/debian:v1"
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:%s:v1" % layout, "docker://" + ref)
    ours, floor = [], []
    for i in range(RUNS):
        home = os.path.join(work, "pull-%d" % i)
        env = dict(os.environ, DEVBOX_HOME=home)
        ours.append(timed(lambda: run(devbox, "pull", ref, env=env)))
        dst = os.path.join(work, "skopeo-%d" % i)
        floor.append(timed(lambda: (
            run("skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref, "oci:%s:v1" % dst),
            run("umoci", "unpack", "--rootless", "--image", "%s:v1" % dst, dst + "-bundle"))))
        if i < RUNS - 1:
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.rmtree(dst + "-bundle", ignore_errors=True)
    o, f = statistics.median(ours), statistics.median(floor)
    print("  pull + root disk  median %6.2f s   skopeo copy + umoci unpack %6.2f s   ratio %.2fx  (aim <= 0.7x)"
          % (o, f, o / f))
    print("                    image: 3 layers, %.0f MB in tar, %.0f MB gzip; %d runs, fresh store each"
          % (raw / 1e6, packed / 1e6, RUNS))
    return os.path.join(work, "pull-%d" % (RUNS - 1)), ref


def git_repo(path):
    os.makedirs(path, exist_ok=True)
    run("git", "init", "-q", path)


def bench_second_project(home, ref):
    env = dict(os.environ, DEVBOX_HOME=home)
    a, b = os.path.join(work, "p-a"), os.path.join(work, "p-b")
    for r in (a, b):
        git_repo(r)
        with open(os.path.join(r, "devbox.ini"), "w") as f:
            f.write("[box]\nimage = %s\n" % ref)
    run(devbox, "-C", a, "exec", "true", env=env)
    run(devbox, "-C", a, "stop", env=env)
    cold = timed(lambda: run(devbox, "-C", a, "exec", "true", env=env))
    new = timed(lambda: run(devbox, "-C", b, "exec", "true", env=env))
    for r in (a, b):
        run(devbox, "-C", r, "stop", env=env)
    pid = json.loads(run(devbox, "-C", b, "status", "--json", env=env).stdout)["id"]
    ov = os.path.join(home, "data", "projects", pid, "disk.qcow2")
    print("  second project    first exec %6.2f s   cold start of an existing project %6.2f s   "
          "creating costs %+.2f s; overlay after first boot %.1f MB"
          % (new, cold, new - cold, os.stat(ov).st_blocks * 512 / 1e6))


DYN_LOOP = ("i=0; s=$(date +%s%N); while [ $i -lt 100 ]; do /bin/true; i=$((i+1)); done; "
            "e=$(date +%s%N); echo $(((e - s) / 100000))")


def bench_dynamic(home, ref):
    env = dict(os.environ, DEVBOX_HOME=home)
    repo = os.path.join(work, "p-dyn")
    git_repo(repo)
    loop, warm = {"auto": [], "on": []}, {"auto": [], "on": []}
    accel = "?"
    for _ in range(2):
        for mode in ("auto", "on"):
            with open(os.path.join(repo, "devbox.ini"), "w") as f:
                f.write("[box]\nimage = %s\n[security]\naslr = %s\n" % (ref, mode))
            run(devbox, "-C", repo, "stop", env=env)
            run(devbox, "-C", repo, "exec", "true", env=env)
            accel = json.loads(run(devbox, "-C", repo, "status", "--json", env=env).stdout)["accel"]
            loop[mode].append(int(run(devbox, "-C", repo, "exec", "sh", "-c", DYN_LOOP,
                                      env=env).stdout) / 1000)
            t = [timed(lambda: run(devbox, "-C", repo, "exec", "/bin/true", env=env)) * 1000
                 for _ in range(30)]
            warm[mode].append(statistics.median(t))
    run(devbox, "-C", repo, "stop", env=env)
    la, lo = statistics.median(loop["auto"]), statistics.median(loop["on"])
    wa, wo = statistics.median(warm["auto"]), statistics.median(warm["on"])
    print("  dynamic programs  /bin/true (Debian's, dynamically linked) started by a shell in the box: "
          "%.1f ms each with aslr = auto, %.1f ms with aslr = on   auto/on %.2fx   [accel %s]"
          % (la, lo, la / lo, accel))
    print("                    warm `devbox exec /bin/true` p50 %.1f ms with aslr = auto, %.1f ms with "
          "aslr = on   auto/on %.2fx%s" % (wa, wo, wa / wo,
                                         "" if accel == "tcg" else "   (KVM: auto randomizes too)"))


def bench_proxy():
    home = os.path.join(work, "net")
    env = dict(os.environ, DEVBOX_HOME=home)
    repo = os.path.join(work, "p-net")
    git_repo(repo)
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    pf = os.path.join(work, "net.port")
    here = os.path.dirname(os.path.abspath(__file__))
    srv = subprocess.Popen([sys.executable, os.path.join(here, "..", "tests", "e2e", "netserver.py"), www, pf],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(pf):
                break
            time.sleep(0.1)
        port = int(open(pf).read())
        run(devbox, "image", "import", debian_tar, "default", env=env)
        with open(os.path.join(repo, "devbox.ini"), "w") as f:
            f.write("[network]\nmode = allowlist\nallow = bench.test:%d, 127.0.0.1\n"
                    "resolve = bench.test:127.0.0.1\n" % port)
        run(devbox, "-C", repo, "trust", env=env)
        url = "http://bench.test:%d/bytes/100000000" % port
        curl = ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{time_connect}"]
        run(devbox, "-C", repo, "exec", "true", env=env)
        box = [float(x) for x in run(devbox, "-C", repo, "exec", "--", *curl, url, env=env).stdout.split()]
        host = [float(x) for x in run(*curl, "--resolve", "bench.test:%d:127.0.0.1" % port, url).stdout.split()]
        small = "http://bench.test:%d/echo-host" % port
        lat_box = statistics.median(
            float(run(devbox, "-C", repo, "exec", "--", "curl", "-sS", "-o", "/dev/null", "-w",
                      "%{time_total}", small, env=env).stdout) for _ in range(10))
        lat_host = statistics.median(
            float(run("curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", "--resolve",
                      "bench.test:%d:127.0.0.1" % port, small).stdout) for _ in range(10))
        # the agent channel's own ceiling: 100 MB from the box to the host over exec's stdout
        chan = timed(lambda: run(devbox, "-C", repo, "exec", "--", "head", "-c", "100000000",
                                 "/dev/zero", env=env))
        run(devbox, "-C", repo, "stop", env=env)
    finally:
        srv.kill()
    tb, th, tc = 100 / box[0], 100 / host[0], 100 / chan
    print("  proxy download    %6.1f MB/s in the box through the proxy   on the host %6.1f MB/s   ratio %.2f  (aim >= 0.5)"
          % (tb, th, tb / th))
    print("                    the agent channel itself (100 MB over exec stdout) %6.1f MB/s: proxy/channel %.2f"
          % (tc, tb / tc))
    print("  proxy setup       small request %5.1f ms in the box   on the host %5.1f ms   (+%.1f ms)"
          % (lat_box * 1000, lat_host * 1000, (lat_box - lat_host) * 1000))


def main():
    print("devbox bench: images and network")
    home, ref = bench_pull()
    bench_second_project(home, ref)
    bench_dynamic(home, ref)
    bench_proxy()


main()
