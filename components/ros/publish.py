# Writes one delivery report into the check's ConfigMap through the Kubernetes API, as the Job's
# ServiceAccount (whose Role allows exactly: patch that ConfigMap). Runs after kube_api.py.
# Arguments: configmap name, data key, report line.
name, key, line = sys.argv[1:4]
path = "/api/v1/namespaces/%s/configmaps/%s" % (sa_file("namespace"), name)
error = "no attempt"
for attempt in range(5):
    try:
        status, text = api_request(
            "PATCH", path, {"data": {key: line}}, "application/merge-patch+json"
        )
        if 200 <= status < 300:
            sys.exit(0)
        error = "HTTP %d: %s" % (status, text[:300])
        # Denied or missing: another attempt cannot help.
        if status in (401, 403, 404):
            break
    except (OSError, ValueError) as e:
        error = str(e)
    time.sleep(2)
print("rosfleet: could not write the report to configmap/%s: %s" % (name, error), file=sys.stderr)
sys.exit(1)
