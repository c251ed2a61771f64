# Whether this node's listener of this very run and Job already reported: the check Job's pods
# keep apart only while they run (anti-affinity counts no ended pod), so when a node can take
# none of them, the pod meant for it is placed, once another pod has ended, on a node that has
# reported — it must not measure there again, nor overwrite that report. Runs after kube_api.py.
# Arguments: configmap name, data key. Environment: ROSFLEET_CHECK_RUN, ROSFLEET_JOB_UID[_LEGACY].
# Exit 3: already reported; 0: not (or the API did not say: measuring is then what is left).
name, key = sys.argv[1:3]
path = "/api/v1/namespaces/%s/configmaps/%s" % (sa_file("namespace"), name)
job = os.environ.get("ROSFLEET_JOB_UID") or os.environ.get("ROSFLEET_JOB_UID_LEGACY", "")
try:
    status, text = api_request("GET", path)
    line = json.loads(text).get("data", {}).get(key, "") if status == 200 else ""
    report = json.loads(line.split(" ", 1)[1]) if line.startswith("ROSFLEET_DELIVERY ") else {}
except (OSError, ValueError, IndexError, AttributeError):
    report = {}
if report.get("run") == os.environ.get("ROSFLEET_CHECK_RUN") and report.get("job") == job != "":
    sys.exit(3)
sys.exit(0)
