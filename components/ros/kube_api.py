# The Kubernetes API as a pod's ServiceAccount reaches it, for rosfleet's Job scripts
# (publish.py, crd_wait.py: each is sent after this file, as one program). Standard library only:
# every ROS 2 image has python3 (the ros2 CLI is Python), none is promised to have curl or
# kubectl. ROSFLEET_SA_DIR only moves the ServiceAccount files (tests); the API is where
# Kubernetes tells every pod it is.
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

SA = os.environ.get("ROSFLEET_SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")


def sa_file(name):
    with open(os.path.join(SA, name)) as f:
        return f.read().strip()


def api_request(method, path, body=None, content_type=None, timeout=20):
    """(HTTP status, body text) of one request; OSError or ValueError when there is no answer."""
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    if ":" in host:
        host = "[" + host + "]"
    headers = {"Authorization": "Bearer " + sa_file("token")}
    if content_type is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(
        "https://%s:%s%s" % (host, os.environ["KUBERNETES_SERVICE_PORT"], path),
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers=headers,
    )
    tls = ssl.create_default_context(cafile=os.path.join(SA, "ca.crt"))
    try:
        with urllib.request.urlopen(request, context=tls, timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
