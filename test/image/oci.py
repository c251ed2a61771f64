# Writes a one-layer OCI image archive (what `ctr images import` reads) from a layer tar, and
# prints the manifest's digest, the image's identity in a `name@sha256:...` reference.
# Arguments: LAYER_TAR IMAGE_NAME CONFIG_JSON OUT_TAR. CONFIG_JSON is the image config's
# "config" part (Env, Entrypoint, Cmd, ...). Deterministic: the same layer gives the same digest.
import hashlib
import io
import json
import os
import sys
import tarfile

layer, name, config_json, out = sys.argv[1:5]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def blob(data):
    return hashlib.sha256(data).hexdigest(), data


layer_digest = sha256_file(layer)
config = {
    "architecture": "amd64",
    "os": "linux",
    "config": json.loads(config_json),
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    "history": [{"created_by": "rosfleet test images (test/image/images.sh)"}],
}
config_digest, config_bytes = blob(json.dumps(config, sort_keys=True).encode())
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + config_digest,
        "size": len(config_bytes),
    },
    "layers": [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": "sha256:" + layer_digest,
            "size": os.path.getsize(layer),
        }
    ],
}
manifest_digest, manifest_bytes = blob(json.dumps(manifest, sort_keys=True).encode())
# Two names for the one manifest: the tag, and `<repository>@sha256:<digest>`, which is how
# pods refer to it (containerd's CRI finds a digest reference only under that name).
repository = name.rsplit(":", 1)[0]
index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": manifest["mediaType"],
            "digest": "sha256:" + manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": ref},
        }
        for ref in (name, "%s@sha256:%s" % (repository, manifest_digest))
    ],
}


def add(tar, path, data):
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


with tarfile.open(out + ".part", "w") as tar:
    add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    add(tar, "index.json", json.dumps(index).encode())
    add(tar, "blobs/sha256/" + config_digest, config_bytes)
    add(tar, "blobs/sha256/" + manifest_digest, manifest_bytes)
    info = tarfile.TarInfo("blobs/sha256/" + layer_digest)
    info.size = os.path.getsize(layer)
    info.mtime = 0
    with open(layer, "rb") as f:
        tar.addfile(info, f)
os.replace(out + ".part", out)
print("sha256:" + manifest_digest)
