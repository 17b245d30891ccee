# Kernel modules that should not be loadable, and the mount options of partitions.
package rampart.lib.cis

import rego.v1

# ---- kernel modules ----
modules := {
	"cramfs": {"kind": "filesystem", "controls": ["4.8"]},
	"freevxfs": {"kind": "filesystem", "controls": ["4.8"]},
	"hfs": {"kind": "filesystem", "controls": ["4.8"]},
	"hfsplus": {"kind": "filesystem", "controls": ["4.8"]},
	"jffs2": {"kind": "filesystem", "controls": ["4.8"]},
	"squashfs": {"kind": "filesystem", "controls": ["4.8"]},
	"udf": {"kind": "filesystem", "controls": ["4.8"]},
	"usb_storage": {"kind": "device", "controls": ["10.3"]},
	"dccp": {"kind": "protocol", "controls": ["4.8"]},
	"tipc": {"kind": "protocol", "controls": ["4.8"]},
	"rds": {"kind": "protocol", "controls": ["4.8"]},
	"sctp": {"kind": "protocol", "controls": ["4.8"]},
}

checks[id] := object.union(
	chk(
		sprintf("Ensure %s kernel module is not available", [replace(name, "_", "-")]),
		"low",
		["kernel_modules.loaded", "kernel_modules.install_disabled", "kernel_modules.blacklisted"],
		sprintf("A %s driver the host does not use is kernel attack surface that any local user can make the kernel load.", [m.kind]),
		sprintf("printf 'install %s /bin/false\\nblacklist %s\\n' > /etc/modprobe.d/%s.conf; modprobe -r %s", [name, name, name, name]),
		["CM-7"],
		m.controls,
	),
	{"action": {"kind": "kernel_module", "module": name}},
) if {
	some name, m in modules
	id := sprintf("module-%s", [replace(name, "_", "-")])
}

result[id] := verdict(ok, {"loaded": loaded, "install_disabled": disabled, "blacklisted": blacklisted}) if {
	some name, _ in modules
	id := sprintf("module-%s", [replace(name, "_", "-")])
	km := input.kernel_modules
	loaded := name in km.loaded
	disabled := name in km.install_disabled
	blacklisted := name in km.blacklisted
	ok := all_true([loaded == false, disabled, blacklisted])
}

# ---- partitions ----
partitions := {
	"/tmp": {"slug": "tmp", "options": ["nodev", "nosuid", "noexec"]},
	"/dev/shm": {"slug": "dev-shm", "options": ["nodev", "nosuid", "noexec"]},
	"/home": {"slug": "home", "options": ["nodev", "nosuid"]},
	"/var": {"slug": "var", "options": ["nodev", "nosuid"]},
	"/var/tmp": {"slug": "var-tmp", "options": ["nodev", "nosuid", "noexec"]},
	"/var/log": {"slug": "var-log", "options": ["nodev", "nosuid", "noexec"]},
	"/var/log/audit": {"slug": "var-log-audit", "options": ["nodev", "nosuid", "noexec"]},
}

option_purpose := {
	"nodev": "device files created there would give direct access to disks and memory",
	"nosuid": "setuid programs placed there would run with their owner's rights",
	"noexec": "programs written there could be run",
}

# Each partition's mounts, found once per host (not once per check).
partition_mounts := {point: [m | some m in input.mounts; m.mount_point == point] | some point, _ in partitions}

checks[id] := chk(
	sprintf("Ensure %s is a separate partition", [point]),
	"low",
	["mounts"],
	sprintf("Its own filesystem lets %s carry restrictive mount options and keeps it from filling the root filesystem.", [point]),
	sprintf("Give %s its own filesystem in /etc/fstab (or a systemd mount unit) and mount it.", [point]),
	["CM-6", "SC-5"],
	["4.8"],
) if {
	some point, p in partitions
	id := sprintf("partition-%s-separate", [p.slug])
}

result[id] := verdict(count(found) > 0, {"mounts": found}) if {
	some point, p in partitions
	id := sprintf("partition-%s-separate", [p.slug])
	found := [{"device": m.device, "fstype": m.fstype} | some m in partition_mounts[point]]
}

checks[id] := chk(
	sprintf("Ensure %s option set on %s partition", [opt, point]),
	"medium",
	["mounts"],
	sprintf("Without %s on %s, %s.", [opt, point, option_purpose[opt]]),
	sprintf("Add %s to the options of %s in /etc/fstab, then: mount -o remount %s", [opt, point, point]),
	["CM-6", "AC-6"],
	["3.3"],
) if {
	some point, p in partitions
	some opt in p.options
	id := sprintf("partition-%s-%s", [p.slug, opt])
}

result[id] := not_applicable(sprintf("%s is not a separate partition", [point])) if {
	some point, p in partitions
	some opt in p.options
	id := sprintf("partition-%s-%s", [p.slug, opt])
	count(partition_mounts[point]) == 0
}

result[id] := verdict((opt in m.options), {"mount_point": point, "options": m.options}) if {
	some point, p in partitions
	some opt in p.options
	id := sprintf("partition-%s-%s", [p.slug, opt])
	found := partition_mounts[point]
	count(found) > 0
	# The last mount on a point is the one in effect.
	m := found[count(found) - 1]
}
