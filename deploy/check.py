#!/usr/bin/env python3
"""Syntax and shape checks of the deployment files (run by .ci/run)."""
import pathlib, sys, yaml, configparser

root = pathlib.Path(__file__).parent
compose = yaml.safe_load((root / "compose.yaml").read_text())
assert {"postgres", "paygate-1", "paygate-2", "lb"} <= set(compose["services"]), compose["services"].keys()
docs = [d for d in yaml.safe_load_all((root / "k8s" / "paygate.yaml").read_text()) if d]
kinds = {d["kind"] for d in docs}
metrics_port = None
assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= kinds, kinds
for d in docs:
    assert d.get("apiVersion") and d.get("metadata", {}).get("name"), d
    if d["kind"] == "Deployment":
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        # Prometheus scrapes the metrics port, which is where PAYGATE_METRICS_BIND puts /metrics,
        # and the Service does not expose it.
        ann = d["spec"]["template"]["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") == "true":
            port = int(ann["prometheus.io/port"])
            assert port in {p["containerPort"] for p in c["ports"]}, c["ports"]
            assert ann.get("prometheus.io/path", "/metrics") == "/metrics"
            config = next(x for x in docs if x["kind"] == "ConfigMap")["data"]
            assert config.get("PAYGATE_METRICS_BIND", "").endswith(f":{port}"), config
            metrics_port = port
for d in docs:
    if d["kind"] == "Service" and metrics_port is not None:
        exposed = {p.get("targetPort") for p in d["spec"]["ports"]} | {p.get("port") for p in d["spec"]["ports"]}
        assert "metrics" not in exposed and metrics_port not in exposed, "the Service must not expose /metrics"
assert compose["services"]["paygate-1"]["environment"].get("PAYGATE_METRICS_BIND"), \
    "compose: /metrics off the load-balanced port"
unit = configparser.ConfigParser(strict=False)
unit.read(root / "paygate.service")
assert unit["Service"]["ExecStart"].endswith("paygate serve")
assert "FROM" in (root / "Dockerfile").read_text()
# The balancer appends the client's address, and the replicas trust exactly the balancer's.
assert "option forwardfor" in (root / "haproxy.cfg").read_text(), "haproxy: option forwardfor"
lb_ip = compose["services"]["lb"]["networks"]["default"]["ipv4_address"]
trusted = compose["services"]["paygate-1"]["environment"].get("PAYGATE_TRUSTED_PROXIES", "")
assert trusted in (lb_ip, f"{lb_ip}/32"), (trusted, lb_ip)
print("deploy files ok")
