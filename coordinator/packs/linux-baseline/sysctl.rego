# Kernel network and memory hardening parameters.
package rampart.pack.linux_baseline

import rego.v1

# keys: every one must have the wanted value.
sysctl_checks := {
	"sysctl-ip-forward": {"keys": ["net.ipv4.ip_forward"], "want": "0", "title": "IP forwarding is disabled", "cis": ["3.3.1"], "severity": "medium"},
	"sysctl-accept-redirects": {"keys": ["net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.default.accept_redirects"], "want": "0", "title": "ICMP redirects are not accepted", "cis": ["3.3.5"], "severity": "medium"},
	"sysctl-send-redirects": {"keys": ["net.ipv4.conf.all.send_redirects"], "want": "0", "title": "ICMP redirects are not sent", "cis": ["3.3.2"], "severity": "medium"},
	"sysctl-accept-source-route": {"keys": ["net.ipv4.conf.all.accept_source_route"], "want": "0", "title": "Source-routed packets are not accepted", "cis": ["3.3.8"], "severity": "medium"},
	"sysctl-rp-filter": {"keys": ["net.ipv4.conf.all.rp_filter"], "want": "1", "title": "Reverse path filtering is enabled", "cis": ["3.3.7"], "severity": "medium"},
	"sysctl-tcp-syncookies": {"keys": ["net.ipv4.tcp_syncookies"], "want": "1", "title": "TCP SYN cookies are enabled", "cis": ["3.3.10"], "severity": "medium"},
	"sysctl-log-martians": {"keys": ["net.ipv4.conf.all.log_martians"], "want": "1", "title": "Suspicious packets are logged", "cis": ["3.3.9"], "severity": "low"},
	"sysctl-randomize-va-space": {"keys": ["kernel.randomize_va_space"], "want": "2", "title": "Address space layout randomisation is full", "cis": ["1.5.1"], "severity": "high"},
}

meta[id] := object.union(
	check(c.title, c.severity, "Kernel defaults that help attackers route, spoof or exploit memory layout.", concat("; ", [sprintf("sysctl -w %s=%s and persist it in /etc/sysctl.d/", [k, c.want]) | some k in c.keys]), c.cis, ["CM-6", "SC-7"]),
	{"action": {"kind": "sysctl", "keys": c.keys, "value": c.want}},
) if {
	some id, c in sysctl_checks
}

result[id] := verdict(ok, {"values": values, "want": c.want}) if {
	some id, c in sysctl_checks
	values := {k: sysctl_value(k) | some k in c.keys}
	wrong := [k | some k in c.keys; values[k] != c.want]
	ok := count(wrong) == 0
}
