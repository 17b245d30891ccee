# sshd: effective settings (Include, Match and defaults resolved by the agent).
package rampart.pack.linux_baseline

import rego.v1

sshd_checks := {
	"sshd-permit-root-login": {"key": "permitrootlogin", "allowed": {"no"}, "severity": "high", "title": "SSH root login is disabled", "cis": ["5.1.20"], "nist": ["AC-6(2)", "IA-2(5)"], "value": "no"},
	"sshd-password-authentication": {"key": "passwordauthentication", "allowed": {"no"}, "severity": "medium", "title": "SSH password authentication is disabled", "cis": ["5.1.16"], "nist": ["IA-2", "IA-5"], "value": "no"},
	"sshd-permit-empty-passwords": {"key": "permitemptypasswords", "allowed": {"no"}, "severity": "critical", "title": "SSH does not accept empty passwords", "cis": ["5.1.19"], "nist": ["IA-5"], "value": "no"},
	"sshd-x11-forwarding": {"key": "x11forwarding", "allowed": {"no"}, "severity": "low", "title": "SSH X11 forwarding is disabled", "cis": ["5.1.9"], "nist": ["CM-7"], "value": "no"},
	"sshd-ignore-rhosts": {"key": "ignorerhosts", "allowed": {"yes"}, "severity": "medium", "title": "SSH ignores rhosts files", "cis": ["5.1.12"], "nist": ["IA-2"], "value": "yes"},
	"sshd-hostbased-authentication": {"key": "hostbasedauthentication", "allowed": {"no"}, "severity": "medium", "title": "SSH host-based authentication is disabled", "cis": ["5.1.11"], "nist": ["IA-2"], "value": "no"},
	"sshd-permit-user-environment": {"key": "permituserenvironment", "allowed": {"no"}, "severity": "medium", "title": "SSH users cannot set environment options", "cis": ["5.1.21"], "nist": ["CM-6"], "value": "no"},
}

meta[id] := m if {
	some id, c in sshd_checks
	m := object.union(
		check(c.title, c.severity, sprintf("sshd's %s setting widens the attack surface when not set to %v.", [c.key, c.allowed]), sprintf("Set `%s %s` in /etc/ssh/sshd_config (or a file it includes) and reload sshd.", [c.key, c.value]), c.cis, c.nist),
		{"action": {"kind": "sshd_option", "key": c.key, "value": c.value}},
	)
}

result[id] := not_applicable("sshd is not installed") if {
	some id, _ in sshd_checks
	not sshd_present
}

result[id] := verdict(ok, {c.key: v}) if {
	some id, c in sshd_checks
	sshd_present
	v := lower(sshd_value(c.key))
	ok := v in c.allowed
}

# Numeric limits.
meta[id] := object.union(
	check("SSH MaxAuthTries is 4 or less", "medium", "Few attempts per connection slow down password guessing.", "Set `MaxAuthTries 4` in sshd_config and reload sshd.", ["5.1.7"], ["AC-7"]),
	{"action": {"kind": "sshd_option", "key": "maxauthtries", "value": "4"}},
) if id := "sshd-max-auth-tries"

result[id] := not_applicable("sshd is not installed") if { id := "sshd-max-auth-tries"; not sshd_present }

result[id] := verdict(ok, {"maxauthtries": v}) if {
	id := "sshd-max-auth-tries"
	sshd_present
	v := sshd_value("maxauthtries")
	ok := to_number(v) <= 4
}

meta[id] := check("SSH LoginGraceTime is between 1 and 60 seconds", "medium", "A short grace time limits unauthenticated connections held open.", "Set `LoginGraceTime 60` in sshd_config and reload sshd.", ["5.1.8"], ["AC-10"]) if id := "sshd-login-grace-time"

result[id] := not_applicable("sshd is not installed") if { id := "sshd-login-grace-time"; not sshd_present }

result[id] := verdict(ok, {"logingracetime": v}) if {
	id := "sshd-login-grace-time"
	sshd_present
	v := sshd_value("logingracetime")
	seconds := duration_seconds(v)
	ok := all_true([seconds > 0, seconds <= 60])
}

# sshd time values: plain seconds or with s/m/h suffixes.
duration_seconds(v) := to_number(v) if regex.match(`^[0-9]+$`, v)

duration_seconds(v) := to_number(trim_suffix(v, "s")) if regex.match(`^[0-9]+s$`, v)

duration_seconds(v) := to_number(trim_suffix(v, "m")) * 60 if regex.match(`^[0-9]+m$`, v)

duration_seconds(v) := to_number(trim_suffix(v, "h")) * 3600 if regex.match(`^[0-9]+h$`, v)

meta[id] := check("SSH idle sessions time out (ClientAliveInterval 1..900, ClientAliveCountMax ≤ 3)", "low", "Idle sessions left open can be taken over.", "Set `ClientAliveInterval 300` and `ClientAliveCountMax 3` in sshd_config and reload sshd.", ["5.1.6"], ["AC-12", "SC-10"]) if id := "sshd-client-alive"

result[id] := not_applicable("sshd is not installed") if { id := "sshd-client-alive"; not sshd_present }

result[id] := verdict(ok, {"clientaliveinterval": i, "clientalivecountmax": c}) if {
	id := "sshd-client-alive"
	sshd_present
	i := sshd_value("clientaliveinterval")
	c := sshd_value("clientalivecountmax")
	ok := all_true([duration_seconds(i) > 0, duration_seconds(i) <= 900, to_number(c) <= 3])
}

# Algorithms: none of the weak ones may be offered. Unset means OpenSSH's defaults, which are strong.
weak_algorithms := {
	"ciphers": {"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "blowfish-cbc", "cast128-cbc", "arcfour", "arcfour128", "arcfour256", "rijndael-cbc@lysator.liu.se"},
	"macs": {"hmac-md5", "hmac-md5-96", "hmac-sha1", "hmac-sha1-96", "umac-64@openssh.com", "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com", "hmac-sha1-etm@openssh.com", "hmac-sha1-96-etm@openssh.com", "umac-64-etm@openssh.com"},
	"kexalgorithms": {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"},
}

algorithm_checks := {
	"sshd-strong-ciphers": {"key": "ciphers", "title": "SSH offers only strong ciphers", "cis": ["5.1.4"]},
	"sshd-strong-macs": {"key": "macs", "title": "SSH offers only strong MACs", "cis": ["5.1.15"]},
	"sshd-strong-kex": {"key": "kexalgorithms", "title": "SSH offers only strong key exchange algorithms", "cis": ["5.1.14"]},
}

meta[id] := check(c.title, "medium", "Weak algorithms allow downgrade and decryption attacks.", sprintf("Remove weak algorithms from `%s` in sshd_config (or remove the line to use OpenSSH's defaults).", [c.key]), c.cis, ["SC-8", "SC-13"]) if {
	some id, c in algorithm_checks
}

result[id] := not_applicable("sshd is not installed") if {
	some id, _ in algorithm_checks
	not sshd_present
}

result[id] := verdict(ok, {c.key: v, "weak": weak}) if {
	some id, c in algorithm_checks
	sshd_present
	v := sshd_value(c.key)
	offered := {trim_space(a) | some a in split(v, ","); a != ""}
	weak := sort([a | some a in offered; a in weak_algorithms[c.key]])
	ok := count(weak) == 0
}
