#!/usr/bin/env python3
"""Checks deploy/kubernetes/*.yaml without a cluster (run by scripts/check-container.sh).

Each manifest parses and names its apiVersion, kind and name; the selectors of the Service, the
PodDisruptionBudget and the HorizontalPodAutoscaler reach the Deployment's pods; probes and
Service ports name container ports that exist; the HPA can compute CPU utilisation (the
container requests CPU) and keeps at least two replicas; the Deployment leaves `replicas` to the
HPA; and the shutdown budget holds: terminationGracePeriodSeconds > preStop sleep +
drain_timeout (the conf's, default 10s), so a pod finishes its in-flight requests before the
kubelet kills it. A conf with `listen … tls` reads its certificate and key from a Secret volume
(the `tls.crt` and `tls.key` of a kubernetes.io/tls Secret, mounted without subPath so that a
rotated Secret reaches the files), and its TLS port is a container port a Service exposes. With
--cors-proxy BIN, the ConfigMap's conf must also pass `BIN check` (with a throwaway certificate
made by openssl standing in for the Secret's files).

Usage: scripts/check-manifests.py [--cors-proxy BIN] [FILE...]
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

import yaml

API_VERSIONS = {
    "ConfigMap": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
}
problems = []


def fail(where, message):
    problems.append(f"{where}: {message}")


def seconds(duration):
    """A conf duration (250ms, 30s, 5m, 1h, or bare seconds) in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", duration)
    if not m:
        raise ValueError(f"not a duration: {duration!r}")
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def conf_directive(conf, name):
    """The argument of a top-level one-argument directive, or None (comments stripped)."""
    depth = 0
    for line in conf.splitlines():
        line = line.split("#", 1)[0]
        words = line.replace(";", " ").split()
        if depth == 0 and len(words) >= 2 and words[0] == name:
            return words[1]
        depth += line.count("{") - line.count("}")
    return None


def conf_directives(conf, name, block=None):
    """The arguments of every `name` directive at the top level, or directly inside the
    top-level block `block` (comments stripped; one directive a line)."""
    depth, inside, found = 0, None, []
    for line in conf.splitlines():
        line = line.split("#", 1)[0]
        words = line.replace(";", " ").replace("{", " { ").replace("}", " } ").split()
        if depth == 0 and words and "{" in words:
            inside = words[0]
        wanted = depth == 0 if block is None else (depth == 1 and inside == block)
        if wanted and words and words[0] == name:
            found.append([w for w in words[1:] if w not in "{}"])
        depth += line.count("{") - line.count("}")
    return found


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def throwaway_certificate(directory):
    """A certificate and key made by openssl in `directory`, standing in for the Secret's."""
    certificate, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "30", "-subj", "/CN=cors-proxy.example", "-keyout", key, "-out", certificate],
                   check=True, capture_output=True)
    return certificate, key


def check_tls(path, conf, pod, ports, services):
    """The TLS listener's files come from a Secret volume, its port is exposed. Returns the
    conf's (certificate, key) paths, or None without a TLS listener."""
    tls_listens = [words[0] for words in conf_directives(conf, "listen") if len(words) == 2 and words[1] == "tls"]
    if not tls_listens:
        return None
    certificate = (conf_directives(conf, "certificate", block="tls") or [[None]])[0][0]
    key = (conf_directives(conf, "key", block="tls") or [[None]])[0][0]
    if not certificate or not key:
        fail(path, "the conf listens with tls but its tls { } block names no certificate and key")
        return None
    secrets = {v["name"]: v["secret"] for v in pod["spec"].get("volumes", []) if v.get("secret")}
    for role, file, expected in (("certificate", certificate, "tls.crt"), ("key", key, "tls.key")):
        directory, base = os.path.dirname(file), os.path.basename(file)
        mounts = [m for c in pod["spec"]["containers"] for m in c.get("volumeMounts", [])
                  if m.get("name") in secrets and m.get("mountPath", "").rstrip("/") == directory]
        if not mounts:
            fail(path, f"tls {role} {file}: no Secret volume is mounted at {directory}")
            continue
        if any("subPath" in m for m in mounts):
            fail(path, f"tls {role} {file}: the Secret is mounted with subPath, so a rotated Secret never reaches it")
        secret = secrets[mounts[0]["name"]]
        names = [item["path"] for item in secret.get("items", [])] or ["tls.crt", "tls.key"]
        if base not in names or (not secret.get("items") and base != expected):
            fail(path, f"tls {role} {file}: Secret {secret.get('secretName')} holds {names}, "
                       f"a kubernetes.io/tls Secret's {role} is {expected}")
    by_number = {number: name for name, number in ports.items()}
    for address in tls_listens:
        number = port_of(address)
        if number not in by_number:
            fail(path, f"listen {address} tls: port {number} is not a container port ({sorted(ports)})")
            continue
        exposed = [p for svc in services for p in svc["spec"].get("ports", [])
                   if p.get("targetPort") in (by_number[number], number)]
        if not exposed:
            fail(path, f"listen {address} tls: no Service port targets container port {by_number[number]}")
    return certificate, key


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pre_stop_seconds(container):
    pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = (pre_stop.get("exec") or {}).get("command") or []
    if len(command) == 2 and os.path.basename(command[0]) == "sleep":
        return float(command[1])
    return 0.0


def check(path, cors_proxy):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    by_kind = {}
    for i, doc in enumerate(docs):
        where = f"{path} document {i + 1}"
        kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
        if not kind or not name or not doc.get("apiVersion"):
            fail(where, "needs apiVersion, kind and metadata.name")
            continue
        if kind in API_VERSIONS and doc["apiVersion"] != API_VERSIONS[kind]:
            fail(where, f"{kind} {name} is {doc['apiVersion']}, expected {API_VERSIONS[kind]}")
        by_kind.setdefault(kind, []).append(doc)

    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        fail(path, f"expected one Deployment, found {len(deployments)}")
        return
    deployment = deployments[0]
    dname = deployment["metadata"]["name"]
    spec = deployment["spec"]
    pod = spec["template"]
    labels = pod["metadata"].get("labels") or {}
    if not selects(spec["selector"].get("matchLabels"), labels):
        fail(path, f"Deployment {dname}: selector does not match its pod labels {labels}")
    containers = pod["spec"]["containers"]
    ports = {p.get("name"): p["containerPort"] for c in containers for p in c.get("ports", [])}

    for service in by_kind.get("Service", []):
        sname = service["metadata"]["name"]
        if not selects(service["spec"].get("selector"), labels):
            fail(path, f"Service {sname}: selector reaches no pod of Deployment {dname}")
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str) and target not in ports:
                fail(path, f"Service {sname}: targetPort {target} is not a container port ({sorted(ports)})")

    for container in containers:
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            port = ((container.get(probe) or {}).get("httpGet") or {}).get("port")
            if isinstance(port, str) and port not in ports:
                fail(path, f"{probe} uses port {port}, which is not a container port")

    # The conf the pods read, and its drain_timeout.
    conf = None
    for cm in by_kind.get("ConfigMap", []):
        conf = (cm.get("data") or {}).get("proxy.conf", conf)
    mounted = {(v.get("configMap") or {}).get("name") for v in pod["spec"].get("volumes", [])}
    for cm in by_kind.get("ConfigMap", []):
        if cm["metadata"]["name"] not in mounted:
            fail(path, f"ConfigMap {cm['metadata']['name']} is not mounted by Deployment {dname}")
    drain = seconds(conf_directive(conf, "drain_timeout") or "10s") if conf else 10.0
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    tls_files = check_tls(path, conf, pod, ports, by_kind.get("Service", [])) if conf else None
    for container in containers:
        sleep = pre_stop_seconds(container)
        if not grace > sleep + drain:
            fail(path, f"terminationGracePeriodSeconds {grace} must exceed preStop sleep {sleep:g}s + "
                       f"drain_timeout {drain:g}s, or the kubelet kills requests still draining")
    if conf and cors_proxy:
        with tempfile.TemporaryDirectory() as directory:
            checked = conf
            if tls_files:
                for pod_path, stand_in in zip(tls_files, throwaway_certificate(directory)):
                    checked = checked.replace(pod_path, stand_in)
            conf_path = os.path.join(directory, "proxy.conf")
            with open(conf_path, "w") as f:
                f.write(checked)
            result = subprocess.run([cors_proxy, "check", "--config", conf_path], capture_output=True, text=True)
            if result.returncode != 0:
                fail(path, f"the ConfigMap's proxy.conf does not pass check:\n{result.stderr}")

    pdbs = by_kind.get("PodDisruptionBudget", [])
    if not pdbs:
        fail(path, "no PodDisruptionBudget: a node drain could evict every pod at once")
    for pdb in pdbs:
        pname = pdb["metadata"]["name"]
        if not selects(pdb["spec"].get("selector", {}).get("matchLabels"), labels):
            fail(path, f"PodDisruptionBudget {pname}: selector does not match Deployment {dname}'s pods")
        if ("minAvailable" in pdb["spec"]) == ("maxUnavailable" in pdb["spec"]):
            fail(path, f"PodDisruptionBudget {pname}: set exactly one of minAvailable and maxUnavailable")

    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    if not hpas:
        fail(path, "no HorizontalPodAutoscaler")
    for hpa in hpas:
        hname, hspec = hpa["metadata"]["name"], hpa["spec"]
        ref = hspec.get("scaleTargetRef", {})
        if (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) != ("apps/v1", "Deployment", dname):
            fail(path, f"HorizontalPodAutoscaler {hname}: scaleTargetRef is not Deployment {dname}")
        low, high = hspec.get("minReplicas", 1), hspec.get("maxReplicas", 0)
        if low < 2:
            fail(path, f"HorizontalPodAutoscaler {hname}: minReplicas {low}; keep at least 2 so one drains while another serves")
        if high < low:
            fail(path, f"HorizontalPodAutoscaler {hname}: maxReplicas {high} is below minReplicas {low}")
        cpu = [m for m in hspec.get("metrics", []) if m.get("type") == "Resource"
               and m["resource"]["name"] == "cpu" and m["resource"]["target"].get("type") == "Utilization"]
        if not cpu:
            fail(path, f"HorizontalPodAutoscaler {hname}: no CPU utilisation target")
        for container in containers:
            if not ((container.get("resources") or {}).get("requests") or {}).get("cpu"):
                fail(path, f"container {container['name']} requests no CPU, so the HPA cannot compute utilisation")
        if "replicas" in spec:
            fail(path, f"Deployment {dname} sets replicas while an HPA scales it: every apply would reset the count")


def main(argv):
    cors_proxy = None
    if len(argv) >= 2 and argv[0] == "--cors-proxy":
        cors_proxy, argv = argv[1], argv[2:]
    files = argv or sorted(glob.glob("deploy/kubernetes/*.yaml"))
    if not files:
        print("check-manifests: FAIL: no manifests found", file=sys.stderr)
        return 1
    for path in files:
        try:
            check(path, cors_proxy)
        except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
            fail(path, f"cannot be read as a manifest: {error!r}")
    for problem in problems:
        print(f"check-manifests: FAIL: {problem}", file=sys.stderr)
    if not problems:
        print(f"check-manifests: ok ({', '.join(files)})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
