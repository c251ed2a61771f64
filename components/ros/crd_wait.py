# Waits until a CustomResourceDefinition is Established — Multus's, which k3s's Helm controller
# installs in its own time, while the kubernetes provider retries a missing kind for about a
# minute only — as the Job's ServiceAccount (a ClusterRole allows get on exactly that CRD).
# Runs after kube_api.py. Arguments: the CRD's name, seconds to wait, what to look at if it
# never comes. ROSFLEET_POLL_SECONDS: time between tries (tests).
name, seconds, hint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
poll = float(os.environ.get("ROSFLEET_POLL_SECONDS", "5"))
deadline = time.monotonic() + seconds
state = "not there yet"
while True:
    try:
        status, text = api_request(
            "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" + name
        )
    except (OSError, ValueError) as e:
        status, text = 0, str(e)
    if status == 200:
        conditions = json.loads(text).get("status", {}).get("conditions", [])
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            print("rosfleet: %s is established" % name)
            sys.exit(0)
        state = "there but not established yet"
    elif status in (401, 403):
        # Denied: waiting cannot help.
        print("rosfleet: cannot read customresourcedefinition %s: HTTP %d: %s" % (name, status, text[:300]), file=sys.stderr)
        sys.exit(1)
    elif status == 404:
        state = "not there yet"
    else:
        state = "not readable (%s)" % ("HTTP %d" % status if status else text)
    if time.monotonic() >= deadline:
        break
    time.sleep(poll)
print("rosfleet: the CustomResourceDefinition %s is %s after %d s: %s" % (name, state, seconds, hint), file=sys.stderr)
sys.exit(1)
