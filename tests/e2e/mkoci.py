#!/usr/bin/env python3
"""tests/e2e/mkoci.py: build OCI image layouts for tests, from a small JSON spec or a preset.

    mkoci.py preset NAME OUTDIR [--tag TAG]     presets: see PRESETS below (`mkoci.py list`)
    mkoci.py build SPEC.json OUTDIR [--tag TAG]
    mkoci.py list

OUTDIR becomes an OCI image layout (oci-layout, index.json, blobs/sha256/...) whose index.json
names the image TAG (default "latest") with org.opencontainers.image.ref.name, so
`skopeo copy --all oci:OUTDIR:TAG docker://HOST/REPO:TAG` pushes it (registry.sh does that).
Prints the digest index.json points at (a manifest, or an image index for multi-platform specs).

Spec (JSON):
  {"images": [IMAGE, ...]}      one IMAGE: a plain manifest; several: an image index
  IMAGE = {"platform": "linux/amd64", "env": [...], "cmd": [...], "user": "", "workdir": "",
           "layers": [LAYER, ...]}
  LAYER = {"compression": "gzip"|"zstd"|"none", "entries": [ENTRY, ...]}
  ENTRY = {"path": "a/b", "type": "file"|"dir"|"symlink"|"hardlink"|"char"|"block"|"fifo"|
                                   "whiteout"|"opaque",
           "data": "text" | "src": "/host/file" | "zeros": N,   (files)
           "target": "..." (symlink/hardlink), "major"/"minor" (devices),
           "mode": "0755", "uid": 0, "gid": 0, "xattrs": {"user.x": "v"}, "raw": true}
  "whiteout" writes DIR/.wh.NAME for path DIR/NAME; "opaque" writes path/.wh..wh..opq.
  Paths are used verbatim ("raw") for hostile entries: "../x", "/abs", ".wh...".
Deterministic: fixed mtimes, sorted nothing (entry order is the spec's order).
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
            "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
            "none": "application/vnd.oci.image.layer.v1.tar"}
MTIME = 1700000000
BUSYBOX = "/bin/busybox"


def tar_entry(tf, e):
    path = e["path"]
    typ = e.get("type", "file")
    if typ == "whiteout":
        d, _, base = path.rpartition("/")
        path = (d + "/" if d else "") + ".wh." + base
        typ = "file"
        e = dict(e, data="")
    elif typ == "opaque":
        path = path.rstrip("/") + "/.wh..wh..opq"
        typ = "file"
        e = dict(e, data="")
    ti = tarfile.TarInfo(path)
    ti.mtime = MTIME
    ti.uid = e.get("uid", 0)
    ti.gid = e.get("gid", 0)
    ti.uname = ti.gname = ""
    data = None
    if typ == "file":
        ti.type = tarfile.REGTYPE
        ti.mode = int(e.get("mode", "0644"), 8)
        if "src" in e:
            with open(e["src"], "rb") as f:
                data = f.read()
        elif "zeros" in e:
            ti.size = int(e["zeros"])
            data = None
        else:
            data = e.get("data", "").encode()
        if data is not None:
            ti.size = len(data)
    elif typ == "dir":
        ti.type = tarfile.DIRTYPE
        ti.mode = int(e.get("mode", "0755"), 8)
    elif typ == "symlink":
        ti.type = tarfile.SYMTYPE
        ti.linkname = e["target"]
        ti.mode = 0o777
    elif typ == "hardlink":
        ti.type = tarfile.LNKTYPE
        ti.linkname = e["target"]
        ti.mode = int(e.get("mode", "0644"), 8)
    elif typ in ("char", "block"):
        ti.type = tarfile.CHRTYPE if typ == "char" else tarfile.BLKTYPE
        ti.devmajor = e.get("major", 1)
        ti.devminor = e.get("minor", 3)
        ti.mode = int(e.get("mode", "0666"), 8)
    elif typ == "fifo":
        ti.type = tarfile.FIFOTYPE
        ti.mode = int(e.get("mode", "0644"), 8)
    else:
        raise SystemExit(f"mkoci: unknown entry type {typ!r}")
    if e.get("xattrs"):
        ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in e["xattrs"].items()}
    if "zeros" in e:
        tf.addfile(ti, ZeroReader(ti.size))
    else:
        tf.addfile(ti, io.BytesIO(data) if data is not None else None)


class ZeroReader:
    """A file of n zero bytes without holding them in memory (decompression bombs)."""

    def __init__(self, n):
        self.left = n

    def read(self, k=-1):
        k = self.left if k < 0 else min(k, self.left)
        self.left -= k
        return bytes(k)


class Layout:
    def __init__(self, out):
        self.out = out
        os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(out, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def put(self, data, mt, **extra):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.out, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return dict({"mediaType": mt, "digest": "sha256:" + h, "size": len(data)}, **extra)

    def put_file(self, path, mt):
        h = hashlib.sha256()
        n = 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                n += len(chunk)
        dst = os.path.join(self.out, "blobs", "sha256", h.hexdigest())
        os.replace(path, dst)
        return {"mediaType": mt, "digest": "sha256:" + h.hexdigest(), "size": n}


def build_layer(lay, layer):
    comp = layer.get("compression", "gzip")
    tmp = os.path.join(lay.out, "layer.tmp")
    with open(tmp + ".tar", "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for e in layer["entries"]:
                tar_entry(tf, e)
    diff = hashlib.sha256()
    with open(tmp + ".tar", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            diff.update(chunk)
    if comp == "gzip":
        with open(tmp + ".tar", "rb") as src, open(tmp, "wb") as dst:
            with gzip.GzipFile(fileobj=dst, mode="wb", mtime=0) as gz:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    gz.write(chunk)
        os.unlink(tmp + ".tar")
    elif comp == "zstd":
        subprocess.run(["zstd", "-q", "-f", "--rm", tmp + ".tar", "-o", tmp], check=True)
    elif comp == "none":
        os.replace(tmp + ".tar", tmp)
    else:
        raise SystemExit(f"mkoci: unknown compression {comp!r}")
    return lay.put_file(tmp, MT_LAYER[comp]), "sha256:" + diff.hexdigest()


def build_image(lay, img):
    osname, arch, *variant = img.get("platform", "linux/amd64").split("/")
    descs, diffs = [], []
    for layer in img["layers"]:
        d, diff = build_layer(lay, layer)
        descs.append(d)
        diffs.append(diff)
    cfg = {"created": "2023-11-14T22:13:20Z", "architecture": arch, "os": osname,
           "config": {"Env": img.get("env", ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
                      "Cmd": img.get("cmd", ["/bin/sh"])},
           "rootfs": {"type": "layers", "diff_ids": diffs},
           "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "mkoci.py"} for _ in diffs]}
    if variant:
        cfg["variant"] = variant[0]
    for k, key in (("user", "User"), ("workdir", "WorkingDir")):
        if img.get(k):
            cfg["config"][key] = img[k]
    cdesc = lay.put(json.dumps(cfg, sort_keys=True).encode(), MT_CONFIG)
    man = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cdesc, "layers": descs}
    plat = {"os": osname, "architecture": arch}
    if variant:
        plat["variant"] = variant[0]
    return lay.put(json.dumps(man, sort_keys=True).encode(), MT_MANIFEST, platform=plat)


def build(spec, out, tag):
    lay = Layout(out)
    descs = [build_image(lay, img) for img in spec["images"]]
    if len(descs) == 1:
        top = dict(descs[0])
        top.pop("platform", None)
    else:
        idx = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": descs}
        top = lay.put(json.dumps(idx, sort_keys=True).encode(), MT_INDEX)
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [top]}, f)
    return top["digest"]


# ---- presets ------------------------------------------------------------------------------

def busybox_layer(comp="gzip"):
    es = [{"path": "bin", "type": "dir"}, {"path": "bin/busybox", "src": BUSYBOX, "mode": "0755"}]
    for app in ("sh", "ls", "cat", "echo", "id", "stat", "getfattr"):
        es.append({"path": "bin/" + app, "type": "symlink", "target": "busybox"})
    es += [{"path": "etc", "type": "dir"},
           {"path": "etc/passwd", "data": "root:x:0:0:root:/root:/bin/sh\n"},
           {"path": "tmp", "type": "dir", "mode": "1777"}]
    return {"compression": comp, "entries": es}


def preset_busybox():
    return {"images": [{"platform": "linux/amd64", "layers": [busybox_layer()]}]}


def preset_multilayer():
    l2 = {"compression": "zstd", "entries": [
        {"path": "opt", "type": "dir"},
        {"path": "opt/old", "type": "dir"},
        {"path": "opt/old/a", "data": "old a\n"},
        {"path": "opt/old/b", "data": "old b\n"},
        {"path": "data", "type": "dir"},
        {"path": "data/gone", "data": "to be whited out\n"},
        {"path": "data/file", "data": "hello\n"},
        {"path": "data/hardlink", "type": "hardlink", "target": "data/file"},
        {"path": "data/symlink", "type": "symlink", "target": "file"},
        {"path": "data/setuid", "data": "#!/bin/sh\n", "mode": "4755"},
        {"path": "data/bigid", "data": "uid 100000\n", "uid": 100000, "gid": 100000},
        {"path": "data/xattr", "data": "x\n", "xattrs": {"user.devbox": "yes"}},
        {"path": "data/null", "type": "char", "major": 1, "minor": 3},
        {"path": "data/fifo", "type": "fifo"},
    ]}
    l3 = {"compression": "none", "entries": [
        {"path": "data/gone", "type": "whiteout"},
        {"path": "opt/old", "type": "opaque"},
        {"path": "opt/old/new", "data": "new\n"},
        {"path": "data/layer3", "data": "third layer\n"},
    ]}
    l4 = {"compression": "gzip", "entries": [{"path": "data/big", "zeros": 4 << 20}]}
    return {"images": [{"platform": "linux/amd64", "env": ["PATH=/bin", "LAYERS=4"],
                        "cmd": ["/bin/sh", "-c", "cat /data/file"], "user": "0:0",
                        "workdir": "/data", "layers": [busybox_layer(), l2, l3, l4]}]}


def marker_image(platform):
    return {"platform": platform, "layers": [
        {"compression": "gzip", "entries": [{"path": "platform", "data": platform + "\n"}]}]}


def preset_multiplatform():
    return {"images": [{"platform": "linux/amd64", "layers": [busybox_layer(),
                        {"compression": "gzip", "entries": [{"path": "platform", "data": "linux/amd64\n"}]}]},
                       marker_image("linux/arm64/v8"), marker_image("linux/arm/v7"),
                       marker_image("linux/s390x")]}


def preset_root_0700():
    """A layer whose "./" entry is 0700 (a layer made from a `mktemp -d` directory)."""
    lay = busybox_layer()
    lay["entries"].insert(0, {"path": "./", "type": "dir", "mode": "0700"})
    return {"images": [{"platform": "linux/amd64", "layers": [lay]}]}


def preset_absolute():
    """What `umoci insert` writes: a "/" entry (here 0700) and absolute member names."""
    l2 = {"compression": "gzip", "entries": [
        {"path": "/", "type": "dir", "mode": "0700"},
        {"path": "/abs", "type": "dir", "mode": "0755"},
        {"path": "/abs/name", "data": "absolute\n", "mode": "0644"},
        {"path": "/abs/x/../link", "type": "hardlink", "target": "/abs/name"},
    ]}
    return {"images": [{"platform": "linux/amd64", "layers": [busybox_layer(), l2]}]}


def hostile(entries_list):
    return {"images": [{"platform": "linux/amd64",
                        "layers": [{"compression": "gzip", "entries": es} for es in entries_list]}]}


PRESETS = {
    "busybox": preset_busybox,
    "multilayer": preset_multilayer,
    "multiplatform": preset_multiplatform,
    "hostile-dotdot": lambda: hostile([[{"path": "../evil", "data": "x"}]]),
    # absolute names resolve under the root (containerd's rule); a '..' that leaves it does not
    "hostile-absolute": lambda: hostile([[{"path": "/../../tmp/devbox-evil", "data": "x"}]]),
    "root-0700": preset_root_0700,
    "absolute": preset_absolute,
    "hostile-symlink-escape": lambda: hostile([[{"path": "escape", "type": "symlink", "target": "/tmp"}],
                                               [{"path": "escape/devbox-evil", "data": "x"}]]),
    "hostile-hardlink-outside": lambda: hostile([[{"path": "h", "type": "hardlink", "target": "../../../etc/passwd"}]]),
    "hostile-whiteout-dotdot": lambda: hostile([[{"path": "a", "type": "dir"}, {"path": "a/..", "type": "whiteout"}]]),
    "hostile-bomb": lambda: hostile([[{"path": "bomb", "zeros": int(os.environ.get("MKOCI_BOMB", 1 << 30))}]]),
}


def main(argv):
    tag = "latest"
    if "--tag" in argv:
        i = argv.index("--tag")
        tag = argv[i + 1]
        del argv[i:i + 2]
    if len(argv) == 2 and argv[1] == "list":
        print("\n".join(PRESETS))
        return 0
    if len(argv) != 4 or argv[1] not in ("preset", "build"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "preset":
        if argv[2] not in PRESETS:
            print(f"mkoci: unknown preset {argv[2]!r}", file=sys.stderr)
            return 2
        spec = PRESETS[argv[2]]()
    else:
        with open(argv[2]) as f:
            spec = json.load(f)
    print(build(spec, argv[3], tag))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
