# The SSH server: its configuration file and host keys, and its effective settings (the agent
# reports `sshd -T` on a real host, the parsed configuration files on a fixture; a setting no
# file names has OpenSSH's default).
package rampart.lib.cis

import rego.v1

sshd_present if input.sshd.present

# OpenSSH's defaults, for settings no configuration file names.
sshd_defaults := {
	"banner": "none",
	"ciphers": "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
	"clientaliveinterval": "0",
	"clientalivecountmax": "3",
	"disableforwarding": "no",
	"gssapiauthentication": "no",
	"hostbasedauthentication": "no",
	"ignorerhosts": "yes",
	"kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
	"logingracetime": "120",
	"loglevel": "INFO",
	"macs": "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
	"maxauthtries": "6",
	"maxsessions": "10",
	"maxstartups": "10:30:100",
	"permitemptypasswords": "no",
	"permitrootlogin": "prohibit-password",
	"permituserenvironment": "no",
	"usepam": "no",
	"x11forwarding": "no",
}

sshd(key) := object.get(input.sshd.settings, key, object.get(sshd_defaults, key, ""))

sshd_na := not_applicable("the SSH server is not installed")

# ---- yes/no settings ----
sshd_flags := {
	"sshd-disable-forwarding": {"key": "disableforwarding", "want": "yes", "title": "Ensure sshd DisableForwarding is enabled", "severity": "medium", "why": "Forwarding lets a logged-in user tunnel into networks the host can reach.", "nist": ["CM-7", "AC-4"], "controls": ["4.8"]},
	"sshd-gssapi": {"key": "gssapiauthentication", "want": "no", "title": "Ensure sshd GSSAPIAuthentication is disabled", "severity": "low", "why": "GSSAPI authentication is unused on most hosts and adds pre-authentication code paths.", "nist": ["CM-7"], "controls": ["4.8"]},
	"sshd-hostbased": {"key": "hostbasedauthentication", "want": "no", "title": "Ensure sshd HostbasedAuthentication is disabled", "severity": "medium", "why": "Host-based trust lets one compromised host log in to others.", "nist": ["IA-2"], "controls": ["5.2"]},
	"sshd-ignore-rhosts": {"key": "ignorerhosts", "want": "yes", "title": "Ensure sshd IgnoreRhosts is enabled", "severity": "medium", "why": "rhosts files let users grant password-less access on their own.", "nist": ["IA-2"], "controls": ["5.2"]},
	"sshd-permit-empty-passwords": {"key": "permitemptypasswords", "want": "no", "title": "Ensure sshd PermitEmptyPasswords is disabled", "severity": "critical", "why": "An account with an empty password would be open to anyone.", "nist": ["IA-5"], "controls": ["5.2"]},
	"sshd-permit-root-login": {"key": "permitrootlogin", "want": "no", "title": "Ensure sshd PermitRootLogin is disabled", "severity": "high", "why": "Logging in as root directly leaves no trace of who did it; admins should log in as themselves and escalate.", "nist": ["AC-6(2)", "IA-2(5)"], "controls": ["5.4"]},
	"sshd-permit-user-environment": {"key": "permituserenvironment", "want": "no", "title": "Ensure sshd PermitUserEnvironment is disabled", "severity": "medium", "why": "User-set environment (LD_PRELOAD) can bypass restrictions such as forced commands.", "nist": ["CM-6"], "controls": ["4.1"]},
	"sshd-x11-forwarding": {"key": "x11forwarding", "want": "no", "title": "Ensure sshd X11Forwarding is disabled", "severity": "low", "why": "X11 forwarding exposes the client's display to the server and whoever controls it.", "nist": ["CM-7"], "controls": ["4.8"]},
	"sshd-use-pam": {"key": "usepam", "want": "yes", "title": "Ensure sshd UsePAM is enabled", "severity": "medium", "why": "Without PAM, account lockout, password quality and session limits do not apply to SSH logins.", "nist": ["AC-7", "IA-5"], "controls": ["5.2"]},
}

checks[id] := object.union(chk(
	c.title, c.severity, [sprintf("sshd.settings.%s", [c.key])], c.why,
	sprintf("Set `%s %s` in /etc/ssh/sshd_config (before any Include or Match) and reload sshd.", [c.key, c.want]),
	c.nist, c.controls,
), {"action": {"kind": "sshd_option", "key": c.key, "value": c.want}}) if {
	some id, c in sshd_flags
}

result[id] := sshd_na if {
	some id, _ in sshd_flags
	not sshd_present
}

result[id] := verdict(v == c.want, {c.key: v}) if {
	some id, c in sshd_flags
	sshd_present
	v := lower(sshd(c.key))
}

# ---- weak algorithms ----
weak_algorithms := {
	"ciphers": {"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "arcfour", "arcfour128", "arcfour256", "blowfish-cbc", "cast128-cbc", "rijndael-cbc@lysator.liu.se"},
	"macs": {"hmac-md5", "hmac-md5-96", "hmac-ripemd160", "hmac-sha1-96", "umac-64@openssh.com", "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com", "hmac-ripemd160-etm@openssh.com", "hmac-sha1-96-etm@openssh.com", "umac-64-etm@openssh.com"},
	"kexalgorithms": {"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"},
}

sshd_algorithms := {
	"sshd-ciphers": {"key": "ciphers", "title": "Ensure sshd Ciphers are configured"},
	"sshd-kex": {"key": "kexalgorithms", "title": "Ensure sshd KexAlgorithms is configured"},
	"sshd-macs": {"key": "macs", "title": "Ensure sshd MACs are configured"},
}

checks[id] := chk(
	c.title, "medium", [sprintf("sshd.settings.%s", [c.key])],
	"Weak algorithms allow downgrade and decryption of SSH sessions.",
	sprintf("Name only strong algorithms in `%s` in /etc/ssh/sshd_config and reload sshd.", [c.key]),
	["SC-8", "SC-13"], ["3.10"],
) if {
	some id, c in sshd_algorithms
}

result[id] := sshd_na if {
	some id, _ in sshd_algorithms
	not sshd_present
}

result[id] := verdict(count(weak) == 0, {c.key: v, "weak": weak}) if {
	some id, c in sshd_algorithms
	sshd_present
	v := sshd(c.key)
	weak := sort([a | some a in split(v, ","); trim_space(a) in weak_algorithms[c.key]])
}

# ---- numeric limits and other settings ----
checks[id] := chk(
	"Ensure sshd access is configured", "medium", ["sshd.settings.allowusers", "sshd.settings.allowgroups", "sshd.settings.denyusers", "sshd.settings.denygroups"],
	"Naming who may log in keeps service and forgotten accounts out.",
	"Add AllowUsers, AllowGroups, DenyUsers or DenyGroups to /etc/ssh/sshd_config and reload sshd.",
	["AC-3"], ["3.3"],
) if id := "sshd-access"

result[id] := sshd_na if { id := "sshd-access"; not sshd_present }

result[id] := verdict(count(set) > 0, {"set": set}) if {
	id := "sshd-access"
	sshd_present
	set := [k | some k in ["allowusers", "allowgroups", "denyusers", "denygroups"]; sshd(k) != ""]
}

checks[id] := chk(
	"Ensure sshd Banner is configured", "low", ["sshd.settings.banner"],
	"A warning banner before login states that use is monitored, which some jurisdictions require for prosecution.",
	"Set `Banner /etc/issue.net` in /etc/ssh/sshd_config and reload sshd.",
	["AC-8"], ["4.1"],
) if id := "sshd-banner"

result[id] := sshd_na if { id := "sshd-banner"; not sshd_present }

result[id] := verdict((lower(v) in {"", "none"}) == false, {"banner": v}) if {
	id := "sshd-banner"
	sshd_present
	v := sshd("banner")
}

checks[id] := chk(
	"Ensure sshd ClientAliveInterval and ClientAliveCountMax are configured", "low", ["sshd.settings.clientaliveinterval", "sshd.settings.clientalivecountmax"],
	"Dead connections are closed instead of holding sessions open.",
	"Set `ClientAliveInterval 15` and `ClientAliveCountMax 3` in /etc/ssh/sshd_config and reload sshd.",
	["AC-12", "SC-10"], ["4.1"],
) if id := "sshd-client-alive"

result[id] := sshd_na if { id := "sshd-client-alive"; not sshd_present }

result[id] := verdict(ok, {"clientaliveinterval": i, "clientalivecountmax": c}) if {
	id := "sshd-client-alive"
	sshd_present
	i := sshd("clientaliveinterval")
	c := sshd("clientalivecountmax")
	ok := all_true([in_range(i, 1, 1000000), in_range(c, 1, 1000000)])
}

checks[id] := object.union(chk(
	"Ensure sshd LoginGraceTime is configured", "medium", ["sshd.settings.logingracetime"],
	"A short grace time limits unauthenticated connections held open (and brute-force throughput).",
	"Set `LoginGraceTime 60` in /etc/ssh/sshd_config and reload sshd.",
	["AC-10"], ["4.1"],
), {"action": {"kind": "sshd_option", "key": "logingracetime", "value": "60"}}) if id := "sshd-login-grace-time"

result[id] := sshd_na if { id := "sshd-login-grace-time"; not sshd_present }

result[id] := verdict(in_range(seconds, 1, 60), {"logingracetime": v}) if {
	id := "sshd-login-grace-time"
	sshd_present
	v := sshd("logingracetime")
	seconds := sshd_seconds(v)
}

# sshd time values: plain seconds or with s/m/h suffixes ("invalid" otherwise).
time_units := {"s": 1, "m": 60, "h": 3600}

sshd_seconds(v) := n if n := num(v)

sshd_seconds(v) := n if {
	not num(v)
	unit := substring(v, count(v) - 1, 1)
	n := num(substring(v, 0, count(v) - 1)) * time_units[unit]
}

sshd_seconds(v) := "invalid" if {
	not num(v)
	not time_units[substring(v, count(v) - 1, 1)]
}

sshd_seconds(v) := "invalid" if {
	not num(v)
	time_units[substring(v, count(v) - 1, 1)]
	not num(substring(v, 0, count(v) - 1))
}

checks[id] := object.union(chk(
	"Ensure sshd LogLevel is configured", "low", ["sshd.settings.loglevel"],
	"INFO or VERBOSE records logins and key fingerprints for investigations.",
	"Set `LogLevel VERBOSE` in /etc/ssh/sshd_config and reload sshd.",
	["AU-3"], ["8.2"],
), {"action": {"kind": "sshd_option", "key": "loglevel", "value": "VERBOSE"}}) if id := "sshd-log-level"

result[id] := sshd_na if { id := "sshd-log-level"; not sshd_present }

result[id] := verdict((upper(v) in {"INFO", "VERBOSE"}), {"loglevel": v}) if {
	id := "sshd-log-level"
	sshd_present
	v := sshd("loglevel")
}

checks[id] := object.union(chk(
	"Ensure sshd MaxAuthTries is configured", "medium", ["sshd.settings.maxauthtries"],
	"Few attempts per connection slow down password guessing.",
	"Set `MaxAuthTries 4` in /etc/ssh/sshd_config and reload sshd.",
	["AC-7"], ["8.5"],
), {"action": {"kind": "sshd_option", "key": "maxauthtries", "value": "4"}}) if id := "sshd-max-auth-tries"

result[id] := sshd_na if { id := "sshd-max-auth-tries"; not sshd_present }

result[id] := verdict(in_range(v, 1, 4), {"maxauthtries": v}) if {
	id := "sshd-max-auth-tries"
	sshd_present
	v := sshd("maxauthtries")
}

checks[id] := object.union(chk(
	"Ensure sshd MaxSessions is configured", "low", ["sshd.settings.maxsessions"],
	"Limits the sessions one connection can open, bounding resource use.",
	"Set `MaxSessions 10` in /etc/ssh/sshd_config and reload sshd.",
	["SC-5"], ["4.1"],
), {"action": {"kind": "sshd_option", "key": "maxsessions", "value": "10"}}) if id := "sshd-max-sessions"

result[id] := sshd_na if { id := "sshd-max-sessions"; not sshd_present }

result[id] := verdict(in_range(v, 1, 10), {"maxsessions": v}) if {
	id := "sshd-max-sessions"
	sshd_present
	v := sshd("maxsessions")
}

checks[id] := object.union(chk(
	"Ensure sshd MaxStartups is configured", "low", ["sshd.settings.maxstartups"],
	"Bounds unauthenticated connections so a flood cannot exhaust the daemon.",
	"Set `MaxStartups 10:30:60` in /etc/ssh/sshd_config and reload sshd.",
	["SC-5"], ["4.1"],
), {"action": {"kind": "sshd_option", "key": "maxstartups", "value": "10:30:60"}}) if id := "sshd-max-startups"

result[id] := sshd_na if { id := "sshd-max-startups"; not sshd_present }

result[id] := verdict(ok, {"maxstartups": v}) if {
	id := "sshd-max-startups"
	sshd_present
	v := sshd("maxstartups")
	parts := split(v, ":")
	ok := max_startups_ok(parts)
}

max_startups_ok(parts) := all_true([in_range(parts[0], 1, 10), in_range(parts[1], 1, 30), in_range(parts[2], 1, 60)]) if count(parts) == 3

max_startups_ok(parts) := false if count(parts) != 3

# ---- configuration file and host keys ----
checks[id] := object.union(chk(
	"Ensure permissions on /etc/ssh/sshd_config are configured", "medium", ["files[/etc/ssh/sshd_config]"],
	"Whoever can change sshd_config decides who logs in, and how.",
	"chown root:root /etc/ssh/sshd_config && chmod u-x,go-rwx /etc/ssh/sshd_config",
	["AC-3"], ["3.3"],
), {"action": {"kind": "file_mode", "path": "/etc/ssh/sshd_config", "mode": "0600", "owner": "root", "group": "root", "allowed_groups": ["root"]}}) if id := "sshd-config-permissions"

result[id] := file_result("/etc/ssh/sshd_config", 384, {"root"}) if id := "sshd-config-permissions"

host_key_types := ["rsa", "ecdsa", "ed25519"]

checks[id] := chk(
	"Ensure permissions on SSH private host key files are configured", "high",
	[sprintf("files[/etc/ssh/ssh_host_%s_key]", [t]) | some t in host_key_types],
	"A readable private host key lets anyone impersonate the server.",
	"chown root:root /etc/ssh/ssh_host_*_key && chmod u-x,go-rwx /etc/ssh/ssh_host_*_key (RHEL: group ssh_keys, mode 0640)",
	["AC-3", "SC-12"], ["3.3"],
) if id := "sshd-private-host-keys"

checks[id] := chk(
	"Ensure permissions on SSH public host key files are configured", "low",
	[sprintf("files[/etc/ssh/ssh_host_%s_key.pub]", [t]) | some t in host_key_types],
	"A writable public host key could be replaced, confusing clients' host verification.",
	"chown root:root /etc/ssh/ssh_host_*_key.pub && chmod u-x,go-wx /etc/ssh/ssh_host_*_key.pub",
	["AC-3"], ["3.3"],
) if id := "sshd-public-host-keys"

host_keys(suffix) := [f |
	some t in host_key_types
	f := files_by_path[sprintf("/etc/ssh/ssh_host_%s_key%s", [t, suffix])]
	f.exists
]

result[id] := not_applicable("no SSH host keys") if { id := "sshd-private-host-keys"; count(host_keys("")) == 0 }

result[id] := verdict(count(bad) == 0, {"keys": [file_state(f) | some f in keys], "bad": bad}) if {
	id := "sshd-private-host-keys"
	keys := host_keys("")
	count(keys) > 0
	bad := [f.path | some f in keys; not private_key_ok(f)]
}

private_key_ok(f) if {
	f.uid == 0
	f.group == "root"
	mode_within(f.mode, 384)
}

private_key_ok(f) if {
	f.uid == 0
	f.group == "ssh_keys"
	mode_within(f.mode, 416)
}

result[id] := not_applicable("no SSH host keys") if { id := "sshd-public-host-keys"; count(host_keys(".pub")) == 0 }

result[id] := verdict(count(bad) == 0, {"keys": [file_state(f) | some f in keys], "bad": bad}) if {
	id := "sshd-public-host-keys"
	keys := host_keys(".pub")
	count(keys) > 0
	bad := [f.path | some f in keys; not public_key_ok(f)]
}

public_key_ok(f) if {
	f.uid == 0
	f.group == "root"
	mode_within(f.mode, 420)
}

# RHEL: an sshd-only override of the system-wide crypto policy.
checks[id] := chk(
	"Ensure system-wide crypto policy is not over-ridden", "medium", ["redhat.sshd_crypto_policy"],
	"CRYPTO_POLICY in /etc/sysconfig/sshd gives sshd algorithms of its own, outside the policy the host is audited against.",
	"Remove or comment out the CRYPTO_POLICY= line of /etc/sysconfig/sshd and reload sshd.",
	["SC-13"], ["3.10"],
) if id := "sshd-crypto-policy"

result[id] := sshd_na if { id := "sshd-crypto-policy"; not sshd_present }

result[id] := verdict(v == "", {"CRYPTO_POLICY": v}) if {
	id := "sshd-crypto-policy"
	sshd_present
	v := object.get(object.get(input, "redhat", {}), "sshd_crypto_policy", "")
}
