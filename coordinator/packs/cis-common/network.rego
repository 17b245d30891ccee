# Kernel network parameters and the host firewall.
package rampart.lib.cis

import rego.v1

# ---- network parameters (sysctl) ----
network_params := {
	"ip-forwarding": {"title": "Ensure ip forwarding is disabled", "keys": {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}, "why": "A host that is not a router must not route packets between its networks."},
	"send-redirects": {"title": "Ensure packet redirect sending is disabled", "keys": {"net.ipv4.conf.all.send_redirects": "0", "net.ipv4.conf.default.send_redirects": "0"}, "why": "Only routers send ICMP redirects; a compromised host could use them to reroute its neighbours' traffic."},
	"bogus-icmp": {"title": "Ensure bogus icmp responses are ignored", "keys": {"net.ipv4.icmp_ignore_bogus_error_responses": "1"}, "why": "Bogus ICMP error responses fill the logs and hide real events."},
	"broadcast-icmp": {"title": "Ensure broadcast icmp requests are ignored", "keys": {"net.ipv4.icmp_echo_ignore_broadcasts": "1"}, "why": "Answering broadcast pings makes the host a Smurf amplifier."},
	"icmp-redirects": {"title": "Ensure icmp redirects are not accepted", "keys": {"net.ipv4.conf.all.accept_redirects": "0", "net.ipv4.conf.default.accept_redirects": "0", "net.ipv6.conf.all.accept_redirects": "0", "net.ipv6.conf.default.accept_redirects": "0"}, "why": "Accepted redirects let an attacker on the link change the host's routes."},
	"secure-redirects": {"title": "Ensure secure icmp redirects are not accepted", "keys": {"net.ipv4.conf.all.secure_redirects": "0", "net.ipv4.conf.default.secure_redirects": "0"}, "why": "Redirects from listed gateways can be forged too."},
	"rp-filter": {"title": "Ensure reverse path filtering is enabled", "keys": {"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.default.rp_filter": "1"}, "why": "Reverse path filtering drops packets with spoofed source addresses."},
	"source-route": {"title": "Ensure source routed packets are not accepted", "keys": {"net.ipv4.conf.all.accept_source_route": "0", "net.ipv4.conf.default.accept_source_route": "0", "net.ipv6.conf.all.accept_source_route": "0", "net.ipv6.conf.default.accept_source_route": "0"}, "why": "Source routing lets a sender choose the path, e.g. around the firewall."},
	"log-martians": {"title": "Ensure suspicious packets are logged", "keys": {"net.ipv4.conf.all.log_martians": "1", "net.ipv4.conf.default.log_martians": "1"}, "why": "Logged martian packets show spoofing attempts."},
	"tcp-syncookies": {"title": "Ensure tcp syn cookies is enabled", "keys": {"net.ipv4.tcp_syncookies": "1"}, "why": "SYN cookies keep the host answering during a SYN flood."},
	"ipv6-router-advertisements": {"title": "Ensure ipv6 router advertisements are not accepted", "keys": {"net.ipv6.conf.all.accept_ra": "0", "net.ipv6.conf.default.accept_ra": "0"}, "why": "Accepted router advertisements let anyone on the link become the host's default gateway."},
}

checks[id] := object.union(chk(
	p.title, "medium", [sprintf("sysctl.%s", [k]) | some k, _ in p.keys],
	p.why,
	sprintf("Set %s in /etc/sysctl.d/60-netipv4_sysctl.conf (and netipv6), then sysctl --system.", [concat(", ", [sprintf("%s = %s", [k, v]) | some k, v in p.keys])]),
	["CM-6", "SC-7"], ["4.8"],
), action) if {
	some slug, p in network_params
	id := sprintf("net-%s", [slug])
	action := network_action(p.keys)
}

# A sysctl action where one key decides the check.
network_action(keys) := {"action": {"kind": "sysctl", "key": k, "value": v}} if {
	count(keys) == 1
	some k, v in keys
}

network_action(keys) := {} if count(keys) != 1

result[id] := verdict(count(wrong) == 0, {"values": values, "wrong": wrong}) if {
	some slug, p in network_params
	id := sprintf("net-%s", [slug])
	sys := object.get(input, "sysctl", {})
	# IPv6 keys are absent when IPv6 is disabled: then they need no value.
	values := {k: object.get(sys, k, "absent") | some k, _ in p.keys}
	wrong := sort([k |
		some k, want in p.keys
		got := values[k]
		got != want
		not absent_ipv6(k, got)
	])
}

absent_ipv6(k, got) if {
	got == "absent"
	startswith(k, "net.ipv6.")
}

# ---- firewall ----
fw := object.get(input, "firewall", {})

nft_chains := object.get(fw, "nft_chains", [])

# The firewall configuration utility the host uses.
firewall_choice := "nftables" if unit_enabled("nftables.service")

firewall_choice := "firewalld" if {
	not unit_enabled("nftables.service")
	unit_in_use("firewalld.service")
}

firewall_choice := "ufw" if {
	not unit_enabled("nftables.service")
	not unit_in_use("firewalld.service")
	"ufw" in installed
}

firewall_choice := "none" if {
	not unit_enabled("nftables.service")
	not unit_in_use("firewalld.service")
	not "ufw" in installed
}

firewalls_in_use := sort([name |
	some name, on in {
		"ufw": any_true([object.get(fw, "ufw_enabled", false), unit_enabled("ufw.service")]),
		"nftables": unit_enabled("nftables.service"),
		"firewalld": unit_in_use("firewalld.service"),
		"iptables": unit_enabled("netfilter-persistent.service"),
	}
	on == true
])

checks[id] := chk(
	"Ensure a single firewall configuration utility is in use", "medium", ["firewall", "units"],
	"Two utilities managing the same netfilter tables overwrite each other's rules; none leaves the host open.",
	"Choose one of ufw, nftables or iptables (firewalld on RHEL); enable it and disable the others.",
	["SC-7"], ["4.4", "4.5"],
) if id := "firewall-single-utility"

result[id] := verdict(count(firewalls_in_use) == 1, {"in_use": firewalls_in_use}) if id := "firewall-single-utility"

# ufw: applies when ufw is the chosen utility, or when none is chosen (ufw is the benchmark's first choice).
ufw_applies if firewall_choice in {"ufw", "none"}

ufw_checks := {
	"ufw-installed": {"title": "Ensure ufw is installed", "remediation": "apt install ufw"},
	"ufw-no-iptables-persistent": {"title": "Ensure iptables-persistent is not installed with ufw", "remediation": "apt purge iptables-persistent"},
	"ufw-enabled": {"title": "Ensure ufw service is enabled", "remediation": "systemctl unmask ufw.service && systemctl --now enable ufw.service && ufw enable"},
	"ufw-default-deny": {"title": "Ensure ufw default deny firewall policy", "remediation": "ufw default deny incoming && ufw default deny outgoing && ufw default deny routed (after allowing what the host needs)"},
}

checks[id] := chk(c.title, "high", ["packages", "units", "firewall.ufw_enabled", "firewall.ufw_defaults"], "A host firewall limits what reaches the host's services to what is meant to.", c.remediation, ["SC-7"], ["4.4", "4.5"]) if {
	some id, c in ufw_checks
}

result[id] := not_applicable(sprintf("the host's firewall is %s", [firewall_choice])) if {
	some id, _ in ufw_checks
	not ufw_applies
}

result[id] := verdict(("ufw" in installed), {"installed": ("ufw" in installed)}) if { id := "ufw-installed"; ufw_applies }

result[id] := verdict(count(found) == 0, {"installed": found}) if {
	id := "ufw-no-iptables-persistent"
	ufw_applies
	found := installed_of(["iptables-persistent"])
}

result[id] := verdict(ok, {"ufw_conf_enabled": on, "unit": unit_state("ufw.service")}) if {
	id := "ufw-enabled"
	ufw_applies
	on := object.get(fw, "ufw_enabled", false)
	ok := all_true([on, unit_enabled("ufw.service")])
}

result[id] := verdict(count(open) == 0, {"policies": policies, "not_deny": open}) if {
	id := "ufw-default-deny"
	ufw_applies
	d := object.get(fw, "ufw_defaults", {})
	policies := {k: object.get(d, k, "") | some k in ["DEFAULT_INPUT_POLICY", "DEFAULT_OUTPUT_POLICY", "DEFAULT_FORWARD_POLICY"]}
	open := sort([k | some k, v in policies; not upper(v) in {"DROP", "REJECT"}])
}

# nftables: applies when nftables is the chosen utility.
nft_checks := {
	"nftables-installed": {"title": "Ensure nftables is installed", "remediation": "apt install nftables"},
	"nftables-ufw-disabled": {"title": "Ensure ufw is uninstalled or disabled with nftables", "remediation": "ufw disable && systemctl mask ufw.service (or apt purge ufw)"},
	"nftables-table": {"title": "Ensure a nftables table exists", "remediation": "nft create table inet filter (and keep it in /etc/nftables.conf)"},
	"nftables-base-chains": {"title": "Ensure nftables base chains exist", "remediation": "Add input, forward and output base chains (type filter hook ... priority 0) to /etc/nftables.conf."},
	"nftables-loopback": {"title": "Ensure nftables loopback traffic is configured", "remediation": "In the input chain: iif \"lo\" accept; ip saddr 127.0.0.0/8 counter drop; ip6 saddr ::1 counter drop"},
	"nftables-default-deny": {"title": "Ensure nftables default deny firewall policy", "remediation": "Set `policy drop;` on the input, forward and output base chains (after allowing what the host needs)."},
	"nftables-service-enabled": {"title": "Ensure nftables service is enabled", "remediation": "systemctl enable nftables.service"},
}

checks[id] := chk(c.title, "high", ["packages", "units", "firewall.nft_tables", "firewall.nft_chains"], "A host firewall limits what reaches the host's services to what is meant to.", c.remediation, ["SC-7"], ["4.4", "4.5"]) if {
	some id, c in nft_checks
}

result[id] := not_applicable(sprintf("the host's firewall is %s", [firewall_choice])) if {
	some id, _ in nft_checks
	firewall_choice != "nftables"
}

base_chain(hook) := [c | some c in nft_chains; c.hook == hook; c.type == "filter"]

result[id] := verdict(("nftables" in installed), {"installed": ("nftables" in installed)}) if { id := "nftables-installed"; firewall_choice == "nftables" }

result[id] := verdict(ok, {"ufw_installed": ("ufw" in installed), "ufw_enabled": on}) if {
	id := "nftables-ufw-disabled"
	firewall_choice == "nftables"
	on := any_true([object.get(fw, "ufw_enabled", false), unit_enabled("ufw.service")])
	ok := any_true([("ufw" in installed) == false, on == false])
}

result[id] := verdict(count(tables) > 0, {"tables": tables, "source": object.get(fw, "nft_source", "")}) if {
	id := "nftables-table"
	firewall_choice == "nftables"
	tables := object.get(fw, "nft_tables", [])
}

result[id] := verdict(count(missing) == 0, {"missing_hooks": missing}) if {
	id := "nftables-base-chains"
	firewall_choice == "nftables"
	missing := [h | some h in ["input", "forward", "output"]; count(base_chain(h)) == 0]
}

result[id] := verdict(ok, {"accepts_lo": accepts, "drops_127": drops}) if {
	id := "nftables-loopback"
	firewall_choice == "nftables"
	rules := [r | some c in base_chain("input"); some r in c.rules]
	accepts := any_true([regex.match(`^iif(name)? "?lo"? .*accept`, r) | some r in rules])
	drops := any_true([all_true([contains(r, "127.0.0.0/8"), contains(r, "drop")]) | some r in rules])
	ok := all_true([accepts, drops])
}

result[id] := verdict(count(open) == 0, {"not_drop": open}) if {
	id := "nftables-default-deny"
	firewall_choice == "nftables"
	open := sort([sprintf("%s (%s)", [h, policies]) |
		some h in ["input", "forward", "output"]
		policies := concat(",", [c.policy | some c in base_chain(h)])
		not policies == "drop"
	])
}

result[id] := verdict(unit_enabled("nftables.service"), unit_state("nftables.service")) if { id := "nftables-service-enabled"; firewall_choice == "nftables" }
