# Checks the CIS Red Hat Enterprise Linux 9 Benchmark has and the Debian and Ubuntu benchmarks do
# not (package signatures, crypto policy, authselect), and the Red Hat benchmark's way of
# splitting or wording checks the others combine: packages that must not be installed at all,
# core-dump storage and backtraces apart, password reuse of 5.
package rampart.lib.cis

import rego.v1

redhat := object.get(input, "redhat", {})

# (The sshd override of the crypto policy is in ssh.rego: regorus 0.14 fails the whole `result`
# when a rule here reads rules of a file that sorts after this one.)

# dnf's booleans.
dnf_true(v) := lower(trim_space(v)) in {"1", "yes", "true", "on"}

checks[id] := chk(
	"Ensure gpgcheck is globally activated", "high", ["redhat.dnf_gpgcheck", "redhat.repos_without_gpgcheck"],
	"Without signature checks, a tampered mirror or a man in the middle installs whatever it wants as root.",
	"Set gpgcheck=1 in the [main] section of /etc/dnf/dnf.conf and remove gpgcheck=0 from every file in /etc/yum.repos.d/.",
	["SI-7", "CM-5(3)"], ["7.3"],
) if id := "dnf-gpgcheck"

result[id] := verdict(ok, {"dnf_gpgcheck": v, "repos_without_gpgcheck": repos}) if {
	id := "dnf-gpgcheck"
	v := object.get(redhat, "dnf_gpgcheck", "")
	repos := object.get(redhat, "repos_without_gpgcheck", [])
	ok := all_true([dnf_true(v), count(repos) == 0])
}

checks[id] := chk(
	"Ensure system-wide crypto policy is not legacy", "high", ["redhat.crypto_policy"],
	"The LEGACY policy re-enables SHA-1 signatures, small Diffie-Hellman groups and old TLS versions for every program on the host.",
	"update-crypto-policies --set DEFAULT (or FUTURE), then reboot.",
	["SC-13", "SC-8"], ["3.10"],
) if id := "crypto-policy-not-legacy"

result[id] := verdict(ok, {"crypto_policy": p}) if {
	id := "crypto-policy-not-legacy"
	p := object.get(redhat, "crypto_policy", "")
	ok := all_true([p != "", startswith(upper(p), "LEGACY") == false])
}

checks[id] := chk(
	"Ensure custom authselect profile is used", "medium", ["redhat.authselect_profile"],
	"A custom profile keeps PAM changes when authselect rewrites the stacks; edits to a stock profile's files are lost.",
	"authselect create-profile site -b sssd && authselect select custom/site with-faillock --force",
	["IA-2", "AC-7"], ["5.2"],
) if id := "authselect-custom-profile"

result[id] := verdict(startswith(p, "custom/"), {"profile": p}) if {
	id := "authselect-custom-profile"
	p := object.get(redhat, "authselect_profile", "")
}

checks[id] := chk(
	"Ensure authselect includes with-faillock", "medium", ["redhat.authselect_features", "pam.services"],
	"pam_faillock locks an account after repeated failed logins; authselect owns the stacks it goes in.",
	"authselect enable-feature with-faillock && authselect apply-changes",
	["AC-7"], ["6.2"],
) if id := "authselect-with-faillock"

result[id] := verdict(ok, {"features": features, "pam_faillock_in": stacks}) if {
	id := "authselect-with-faillock"
	features := object.get(redhat, "authselect_features", [])
	stacks := sort({e.file | some e in pam_module_entries("pam_faillock.so")})
	ok := all_true([("with-faillock" in features), count(stacks) > 0])
}

checks[id] := chk(
	"Ensure password creation requirements are configured", "medium", ["pam.pwquality", "pam.services"],
	"Short or single-class passwords fall to guessing; pam_pwquality refuses them when it is in the stack.",
	"Set `minlen = 14` and `minclass = 4` (or dcredit, ucredit, lcredit, ocredit = -1) in /etc/security/pwquality.conf, with pam_pwquality.so in system-auth and password-auth.",
	["IA-5(1)"], ["5.2"],
) if id := "pwquality-creation"

result[id] := verdict(ok, {"minlen": minlen, "minclass": minclass, "credits": credits, "in_stack": in_stack}) if {
	id := "pwquality-creation"
	minlen := object.get(pwquality, "minlen", "8")
	minclass := object.get(pwquality, "minclass", "0")
	credits := {k: object.get(pwquality, k, "0") | some k in ["dcredit", "ucredit", "lcredit", "ocredit"]}
	in_stack := count(module_lines("pam_pwquality.so", "password")) > 0
	classes := any_true([in_range(minclass, 4, 4), all_true([in_range(v, -1000, -1) | some v in credits])])
	ok := all_true([in_range(minlen, 14, 1000), classes, in_stack])
}

checks[id] := chk(
	"Ensure lockout for failed password attempts is configured", "medium", ["pam.faillock"],
	"Without a lockout, a password can be guessed as fast as logins can be tried.",
	"Set `deny = 5` (or less) and `unlock_time = 900` (or more, or 0) in /etc/security/faillock.conf.",
	["AC-7"], ["6.2"],
) if id := "faillock-lockout"

result[id] := verdict(ok, {"deny": deny, "unlock_time": unlock}) if {
	id := "faillock-lockout"
	deny := object.get(faillock, "deny", "3")
	unlock := object.get(faillock, "unlock_time", "600")
	ok := all_true([in_range(deny, 1, 5), any_true([unlock == "0", in_range(unlock, 900, 1000000000)])])
}

checks[id] := chk(
	"Ensure password reuse is limited", "medium", ["pam.pwhistory", "pam.services"],
	"A user made to change a password should not be able to go back to the old one.",
	"Set `remember = 5` (or more) in /etc/security/pwhistory.conf with pam_pwhistory.so in the password stacks (authselect enable-feature with-pwhistory).",
	["IA-5(1)"], ["5.2"],
) if id := "password-reuse-limited"

result[id] := verdict(ok, {"remember": v, "pam_pwhistory_in_stack": in_stack}) if {
	id := "password-reuse-limited"
	v := object.get(pwhistory, "remember", "0")
	in_stack := count(module_lines("pam_pwhistory.so", "password")) > 0
	ok := all_true([in_range(v, 5, 100000), in_stack])
}

checks[id] := chk(
	"Ensure minimum days between password changes is configured", "low", ["login_defs.settings.PASS_MIN_DAYS", "accounts"],
	"Without a minimum age a user can cycle through the history at once and keep the old password.",
	"Set PASS_MIN_DAYS 1 in /etc/login.defs and chage --mindays 1 USER for existing users.",
	["IA-5(1)"], ["5.2"],
) if id := "password-min-days"

result[id] := verdict(ok, {"PASS_MIN_DAYS": v, "accounts_under": under}) if {
	id := "password-min-days"
	v := object.get(login_defs, "PASS_MIN_DAYS", "0")
	under := sort([a.name | some a in password_accounts; not in_range(a.min_days, 1, 100000)])
	ok := all_true([in_range(v, 1, 100000), count(under) == 0])
}

root_accounts := [a | some a in input.accounts; a.name == "root"]

checks[id] := chk(
	"Ensure default group for the root account is GID 0", "medium", ["accounts"],
	"Files root creates would otherwise belong to a group whose members could read or change them.",
	"usermod -g 0 root",
	["AC-6"], ["5.4"],
) if id := "root-gid-0"

result[id] := verdict(gids == [0], {"root_gid": gids}) if { id := "root-gid-0"; gids := [a.gid | some a in root_accounts] }

checks[id] := chk(
	"Ensure root password is set", "high", ["accounts"],
	"Single-user and emergency modes ask for root's password; without one they let anyone at the console in.",
	"passwd root",
	["IA-5"], ["5.2"],
) if id := "root-password-set"

result[id] := verdict(states == ["set"], {"root_password": states}) if { id := "root-password-set"; states := [a.password | some a in root_accounts] }

checks[id] := chk(
	"Ensure core dump storage is disabled", "medium", ["core_dumps.systemd_coredump"],
	"Stored core dumps keep the memory of crashed programs, secrets included, on disk.",
	"Set Storage=none in the [Coredump] section of /etc/systemd/coredump.conf (or a drop-in).",
	["CM-6", "SC-28"], ["4.1"],
) if id := "coredump-storage"

result[id] := verdict(lower(v) == "none", {"Storage": v}) if {
	id := "coredump-storage"
	v := object.get(object.get(input.core_dumps, "systemd_coredump", {}), "Storage", "external")
}

checks[id] := chk(
	"Ensure core dump backtraces are disabled", "medium", ["core_dumps.systemd_coredump"],
	"Backtraces written to the journal carry parts of a crashed program's memory.",
	"Set ProcessSizeMax=0 in the [Coredump] section of /etc/systemd/coredump.conf (or a drop-in).",
	["CM-6", "SC-28"], ["4.1"],
) if id := "coredump-backtraces"

result[id] := verdict(v == "0", {"ProcessSizeMax": v}) if {
	id := "coredump-backtraces"
	v := object.get(object.get(input.core_dumps, "systemd_coredump", {}), "ProcessSizeMax", "2G")
}

checks[id] := chk(
	"Ensure XDMCP is not enabled", "high", ["packages", "redhat.gdm_xdmcp_enable"],
	"XDMCP sends the whole graphical session, passwords included, in clear text.",
	"Remove `Enable=true` from the [xdmcp] section of /etc/gdm/custom.conf.",
	["CM-7", "SC-8"], ["4.8"],
) if id := "gdm-xdmcp-disabled"

result[id] := not_applicable("gdm is not installed") if { id := "gdm-xdmcp-disabled"; not "gdm" in installed }

result[id] := verdict(dnf_true(v) == false, {"Enable": v}) if {
	id := "gdm-xdmcp-disabled"
	"gdm" in installed
	v := object.get(redhat, "gdm_xdmcp_enable", "")
}

checks[id] := chk(
	"Ensure time synchronization is in use", "medium", ["packages"],
	"Logs, certificates and authentication need an accurate clock.",
	"dnf install chrony",
	["AU-8"], ["8.4"],
) if id := "chrony-installed"

result[id] := verdict(("chrony" in installed), {"installed": installed_of(["chrony"])}) if id := "chrony-installed"

checks[id] := chk(
	"Ensure chrony is configured", "medium", ["time_sync.chrony_sources", "time_sync.chrony_user", "processes"],
	"chrony must take time from the site's servers and run as the unprivileged chrony user.",
	"Add `server` or `pool` lines to /etc/chrony.conf and set OPTIONS=\"-u chrony\" in /etc/sysconfig/chronyd.",
	["AU-8", "AC-6"], ["8.4"],
) if id := "chrony-configured"

result[id] := not_applicable("chrony is not installed") if { id := "chrony-configured"; not "chrony" in installed }

# (Built from the same helpers as chrony-timeserver and chrony-user: a `result` rule that reads
# `result` fails in regorus 0.14.)
result[id] := verdict(ok, {"sources": sources, "processes": chrony_users, "configured_user": input.time_sync.chrony_user}) if {
	id := "chrony-configured"
	"chrony" in installed
	sources := input.time_sync.chrony_sources
	ok := all_true([count(sources) > 0, chrony_user_ok])
}

checks[id] := chk(
	"Ensure firewalld default zone is set", "medium", ["units", "firewall.firewalld"],
	"Interfaces not bound to a zone fall into the default zone; it must be one the site chose.",
	"firewall-cmd --set-default-zone=public (or the site's zone)",
	["SC-7"], ["4.4"],
) if id := "firewalld-default-zone"

result[id] := not_applicable(sprintf("the host's firewall is %s", [firewall_choice])) if { id := "firewalld-default-zone"; firewall_choice != "firewalld" }

result[id] := verdict(zone != "", {"DefaultZone": zone}) if {
	id := "firewalld-default-zone"
	firewall_choice == "firewalld"
	zone := object.get(object.get(fw, "firewalld", {}), "DefaultZone", "")
}

# ---- packages RHEL wants absent (not merely unused) ----
absent_packages := {
	"x-server": {"title": "Ensure xorg-x11-server-common is not installed", "packages": ["xorg-x11-server-common"]},
	"avahi": {"title": "Ensure Avahi Server is not installed", "packages": ["avahi"]},
	"print-server": {"title": "Ensure CUPS is not installed", "packages": ["cups"]},
	"dhcp-server": {"title": "Ensure DHCP Server is not installed", "packages": ["dhcp-server"]},
	"dns-server": {"title": "Ensure DNS Server is not installed", "packages": ["bind"]},
	"ftp-server": {"title": "Ensure VSFTP Server is not installed", "packages": ["vsftpd"]},
	"tftp-server": {"title": "Ensure TFTP Server is not installed", "packages": ["tftp-server"]},
	"web-server": {"title": "Ensure a web server is not installed", "packages": ["httpd", "nginx"]},
	"message-access": {"title": "Ensure IMAP and POP3 server is not installed", "packages": ["dovecot", "cyrus-imapd"]},
	"samba": {"title": "Ensure Samba is not installed", "packages": ["samba"]},
	"web-proxy": {"title": "Ensure HTTP Proxy Server is not installed", "packages": ["squid"]},
	"snmp": {"title": "Ensure net-snmp is not installed", "packages": ["net-snmp"]},
	"telnet-server": {"title": "Ensure telnet-server is not installed", "packages": ["telnet-server"]},
	"dnsmasq": {"title": "Ensure dnsmasq is not installed", "packages": ["dnsmasq"]},
}

checks[id] := chk(c.title, "medium", ["packages"], "A server package the host does not need is attack surface, and one enable away from running.", sprintf("dnf remove %s", [concat(" ", c.packages)]), ["CM-7"], ["4.8"]) if {
	some slug, c in absent_packages
	id := sprintf("absent-%s", [slug])
}

result[id] := verdict(count(found) == 0, {"installed": found}) if {
	some slug, c in absent_packages
	id := sprintf("absent-%s", [slug])
	found := installed_of(c.packages)
}

# Not installed, or every unit masked (another package may need the software).
masked_services := {
	"nfs-server": {"title": "Ensure nfs-utils is not installed or the nfs-server service is masked", "packages": ["nfs-utils"], "units": ["nfs-server.service"]},
	"rpcbind": {"title": "Ensure rpcbind is not installed or the rpcbind services are masked", "packages": ["rpcbind"], "units": ["rpcbind.service", "rpcbind.socket"]},
	"rsync": {"title": "Ensure rsync-daemon is not installed or the rsyncd service is masked", "packages": ["rsync-daemon"], "units": ["rsyncd.service", "rsyncd.socket"]},
}

checks[id] := chk(c.title, "medium", ["packages", "units"], "A file-sharing service left startable is one dependency away from listening.", sprintf("dnf remove %s, or systemctl --now mask %s", [concat(" ", c.packages), concat(" ", c.units)]), ["CM-7"], ["4.8"]) if {
	some slug, c in masked_services
	id := sprintf("masked-%s", [slug])
}

result[id] := verdict(ok, {"installed": found, "units": [unit_state(u) | some u in c.units]}) if {
	some slug, c in masked_services
	id := sprintf("masked-%s", [slug])
	found := installed_of(c.packages)
	ok := any_true([count(found) == 0, all_true([(unit_field(u, "enabled") == "masked") | some u in c.units])])
}
