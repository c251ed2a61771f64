# Writes one delivery report into the check's ConfigMap through the Kubernetes API, as the Job's
# ServiceAccount (whose Role allows exactly: patch that ConfigMap). Standard library only: every
# ROS 2 image has python3 (the ros2 CLI is Python), none is promised to have curl or kubectl.
# Arguments: configmap name, data key, report line. ROSFLEET_SA_DIR only moves the
# ServiceAccount files (tests); the API is where Kubernetes tells every pod it is.
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

name, key, line = sys.argv[1:4]
sa = os.environ.get("ROSFLEET_SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")


def read(file):
    with open(os.path.join(sa, file)) as f:
        return f.read().strip()


host = os.environ["KUBERNETES_SERVICE_HOST"]
if ":" in host:
    host = "[" + host + "]"
url = "https://%s:%s/api/v1/namespaces/%s/configmaps/%s" % (
    host,
    os.environ["KUBERNETES_SERVICE_PORT"],
    read("namespace"),
    name,
)
body = json.dumps({"data": {key: line}}).encode()
tls = ssl.create_default_context(cafile=os.path.join(sa, "ca.crt"))
error = "no attempt"
for attempt in range(5):
    request = urllib.request.Request(
        url,
        data=body,
        method="PATCH",
        headers={
            "Authorization": "Bearer " + read("token"),
            "Content-Type": "application/merge-patch+json",
        },
    )
    try:
        urllib.request.urlopen(request, context=tls, timeout=20).read()
        sys.exit(0)
    except urllib.error.HTTPError as e:
        error = "HTTP %d: %s" % (e.code, e.read().decode(errors="replace")[:300])
        # Denied or missing: another attempt cannot help.
        if e.code in (401, 403, 404):
            break
    except (OSError, ValueError) as e:
        error = str(e)
    time.sleep(2)
print("rosfleet: could not write the report to configmap/%s: %s" % (name, error), file=sys.stderr)
sys.exit(1)
