# Filesystems, /tmp, accounts, legacy services and auditing.
package rampart.pack.linux_baseline

import rego.v1

# ---- filesystems that are rarely needed and widen the kernel's attack surface ----
disabled_filesystems := {"cramfs", "freevxfs", "jffs2", "hfs", "hfsplus", "squashfs", "udf"}

meta[id] := object.union(
	check(sprintf("The %s filesystem cannot be loaded", [fs]), "low", "Unused filesystem drivers are kernel attack surface.", sprintf("echo 'install %s /bin/true' > /etc/modprobe.d/%s.conf && rmmod %s", [fs, fs, fs]), ["1.1.1"], ["CM-7"]),
	{"action": {"kind": "kernel_module", "module": fs}},
) if {
	some fs in disabled_filesystems
	id := sprintf("fs-%s-disabled", [fs])
}

result[id] := verdict(ok, {"loaded": loaded, "install_disabled": install_disabled, "blacklisted": blacklisted}) if {
	some fs in disabled_filesystems
	id := sprintf("fs-%s-disabled", [fs])
	km := input.kernel_modules
	loaded := fs in km.loaded
	install_disabled := fs in km.install_disabled
	blacklisted := fs in km.blacklisted
	ok := all_true([loaded == false, any_true([install_disabled, blacklisted])])
}

# ---- /tmp ----
meta[id] := check("/tmp is a separate mount", "low", "A separate /tmp lets nodev, nosuid and noexec apply to it.", "Mount /tmp as its own filesystem (e.g. enable tmp.mount).", ["1.1.2.1"], ["CM-6"]) if id := "tmp-separate-mount"

result[id] := verdict(ok, {"mounts": tmp_mounts}) if {
	id := "tmp-separate-mount"
	ok := count(tmp_mounts) > 0
}

tmp_mounts := [m | some m in input.mounts; m.mount_point == "/tmp"]

tmp_options := {"nodev", "nosuid", "noexec"}

meta[id] := object.union(
	check(sprintf("/tmp is mounted %s", [opt]), "medium", "Files in /tmp are written by anyone; they must not act as devices, setuid programs or executables.", sprintf("Add %s to /tmp's mount options and remount.", [opt]), ["1.1.2.2"], ["CM-6"]),
	{},
) if {
	some opt in tmp_options
	id := sprintf("tmp-%s", [opt])
}

result[id] := not_applicable("/tmp is not a separate mount") if {
	some opt in tmp_options
	id := sprintf("tmp-%s", [opt])
	count(tmp_mounts) == 0
}

result[id] := verdict(ok, {"options": m.options}) if {
	some opt in tmp_options
	id := sprintf("tmp-%s", [opt])
	# Guarded, not left to the index being undefined: regorus's compiled evaluation (0.14) binds
	# an undefined value instead of failing the rule.
	count(tmp_mounts) > 0
	m := tmp_mounts[count(tmp_mounts) - 1]
	ok := opt in m.options
}

# ---- accounts ----
meta[id] := check("Only root has UID 0", "critical", "Every UID 0 account is a full root login.", "Remove or renumber every UID 0 account other than root.", ["7.2.5"], ["AC-6"]) if id := "accounts-only-root-uid0"

result[id] := verdict(ok, {"uid0": uid0}) if {
	id := "accounts-only-root-uid0"
	uid0 := sort([a.name | some a in input.accounts; a.uid == 0])
	others := [n | some n in uid0; n != "root"]
	ok := count(others) == 0
}

meta[id] := check("No two accounts share a UID", "medium", "Shared UIDs make ownership and audit trails ambiguous.", "Give every account its own UID.", ["7.2.6"], ["IA-2", "AU-3"]) if id := "accounts-no-duplicate-uids"

result[id] := verdict(ok, {"duplicates": dups}) if {
	id := "accounts-no-duplicate-uids"
	# Sorted, a duplicate sits next to its twin: O(n log n), not a count per account (which took
	# minutes on a host with 20,000 accounts).
	uids := sort([a.uid | some a in input.accounts])
	dups := sort({sprintf("%d", [u]) | some i, u in uids; i > 0; uids[i - 1] == u})
	ok := count(dups) == 0
}

meta[id] := check("No two groups share a GID", "low", "Shared GIDs make group permissions ambiguous.", "Give every group its own GID.", ["7.2.7"], ["AC-3"]) if id := "accounts-no-duplicate-gids"

result[id] := verdict(ok, {"duplicates": dups}) if {
	id := "accounts-no-duplicate-gids"
	gids := sort([x.gid | some x in input.groups])
	dups := sort({sprintf("%d", [g]) | some i, g in gids; i > 0; gids[i - 1] == g})
	ok := count(dups) == 0
}

meta[id] := check("No account has an empty password", "critical", "An empty password lets anyone log in as that account.", "Lock the account (passwd -l NAME) or set a password.", ["7.2.2"], ["IA-5"]) if id := "accounts-no-empty-passwords"

result[id] := verdict(ok, {"empty": empty}) if {
	id := "accounts-no-empty-passwords"
	empty := sort([a.name | some a in input.accounts; a.password == "empty"])
	ok := count(empty) == 0
}

# ---- legacy services ----
legacy_services := {
	"service-telnet-absent": {"title": "No telnet server is installed", "packages": {"telnetd", "inetutils-telnetd", "telnetd-ssl", "telnet-server"}, "cis": ["2.2.18"]},
	"service-rsh-absent": {"title": "No rsh server is installed", "packages": {"rsh-server", "rsh-redone-server"}, "cis": ["2.2.15"]},
	"service-nis-absent": {"title": "No NIS server is installed", "packages": {"nis", "ypserv"}, "cis": ["2.2.14"]},
}

meta[id] := check(c.title, "high", "Legacy services send credentials in clear text.", sprintf("Remove the packages: apt purge %s", [concat(" ", sort([p | some p in c.packages]))]), c.cis, ["CM-7"]) if {
	some id, c in legacy_services
}

result[id] := verdict(ok, {"installed": found}) if {
	some id, c in legacy_services
	found := sort(package_installed(c.packages))
	ok := count(found) == 0
}

# ---- services that should not run ----
meta[id] := object.union(
	check("The Avahi (mDNS) daemon is not enabled or running", "medium", "Avahi announces the host and its services to the local network; servers do not need it.", "systemctl disable --now avahi-daemon.service (or apt purge avahi-daemon)", ["2.1.2"], ["CM-7"]),
	{"action": {"kind": "unit_disable", "unit": "avahi-daemon.service"}},
) if id := "service-avahi-disabled"

result[id] := verdict(ok, {"units": avahi}) if {
	id := "service-avahi-disabled"
	u := object.get(object.get(input, "units_by_name", {}), "avahi-daemon.service", {"name": "avahi-daemon.service", "enabled": "", "active": ""})
	in_use := any_true([u.enabled == "enabled", u.active == "active"])
	avahi := {true: [{"name": u.name, "enabled": u.enabled, "active": u.active}], false: []}[in_use]
	ok := count(avahi) == 0
}

# ---- auditing ----
meta[id] := check("auditd is installed", "medium", "Without auditd, security-relevant events are not recorded.", "apt install auditd audispd-plugins && systemctl enable --now auditd", ["6.3.1.1"], ["AU-2", "AU-12"]) if id := "auditd-installed"

result[id] := verdict(ok, {"installed": found}) if {
	id := "auditd-installed"
	found := package_installed({"auditd", "audit"})
	ok := count(found) > 0
}
