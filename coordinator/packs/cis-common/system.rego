# Mandatory access control, the boot loader, process hardening and login banners.
package rampart.lib.cis

import rego.v1

# ---- AppArmor ----
checks[id] := chk(
	"Ensure AppArmor is installed", "medium", ["packages"],
	"AppArmor confines programs to the files and capabilities their profiles allow.",
	"apt install apparmor apparmor-utils",
	["AC-3", "AC-6"], ["3.3"],
) if id := "apparmor-installed"

result[id] := verdict(count(missing) == 0, {"missing": missing}) if {
	id := "apparmor-installed"
	missing := [p | some p in ["apparmor", "apparmor-utils"]; not p in installed]
}

checks[id] := chk(
	"Ensure AppArmor is enabled in the bootloader configuration", "medium", ["boot.entry_args"],
	"Without apparmor=1 security=apparmor on the kernel command line, AppArmor may not confine processes started at boot.",
	"Add apparmor=1 security=apparmor to GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub.",
	["AC-3"], ["3.3"],
) if id := "apparmor-bootloader"

result[id] := verdict(count(missing) == 0, {"missing": missing, "entries": input.boot.entries}) if {
	id := "apparmor-bootloader"
	args := {a | some a in input.boot.entry_args}
	missing := [a | some a in ["apparmor=1", "security=apparmor"]; not a in args]
}

checks[id] := chk(
	"Ensure all AppArmor Profiles are in enforce or complain mode", "medium", ["mac.apparmor_enabled", "mac.apparmor_profiles"],
	"A profile in neither mode confines nothing.",
	"aa-complain /etc/apparmor.d/* (or aa-enforce) and reload AppArmor.",
	["AC-3"], ["3.3"],
) if id := "apparmor-profiles-loaded"

result[id] := verdict(ok, {"enabled": input.mac.apparmor_enabled, "profiles": count(input.mac.apparmor_profiles), "other_modes": others}) if {
	id := "apparmor-profiles-loaded"
	others := sort([sprintf("%s (%s)", [p.name, p.mode]) | some p in input.mac.apparmor_profiles; not p.mode in {"enforce", "complain"}])
	ok := all_true([input.mac.apparmor_enabled, count(input.mac.apparmor_profiles) > 0, count(others) == 0])
}

# ---- SELinux ----
checks[id] := chk(
	"Ensure SELinux is installed", "medium", ["packages"],
	"SELinux confines processes to the types their policy allows.",
	"dnf install libselinux",
	["AC-3", "AC-6"], ["3.3"],
) if id := "selinux-installed"

result[id] := verdict(("libselinux" in installed), {"libselinux": ("libselinux" in installed)}) if id := "selinux-installed"

checks[id] := chk(
	"Ensure SELinux is not disabled in bootloader configuration", "medium", ["boot.entry_args"],
	"selinux=0 or enforcing=0 on the kernel command line turns SELinux off before any policy loads.",
	"grubby --update-kernel ALL --remove-args \"selinux=0 enforcing=0\"",
	["AC-3"], ["3.3"],
) if id := "selinux-bootloader"

result[id] := verdict(count(found) == 0, {"found": found}) if {
	id := "selinux-bootloader"
	found := [a | some a in input.boot.entry_args; a in {"selinux=0", "enforcing=0"}]
}

checks[id] := chk(
	"Ensure SELinux policy is configured", "medium", ["mac.selinux_config_type"],
	"Only the targeted or mls policies confine the system as intended.",
	"Set SELINUXTYPE=targeted in /etc/selinux/config.",
	["AC-3"], ["3.3"],
) if id := "selinux-policy"

result[id] := verdict((input.mac.selinux_config_type in {"targeted", "mls"}), {"SELINUXTYPE": input.mac.selinux_config_type}) if id := "selinux-policy"

checks[id] := chk(
	"Ensure the SELinux mode is not disabled", "high", ["mac.selinux_mode", "mac.selinux_config_mode"],
	"A disabled SELinux enforces nothing and needs a relabel to come back.",
	"Set SELINUX=enforcing (or permissive) in /etc/selinux/config and reboot.",
	["AC-3"], ["3.3"],
) if id := "selinux-not-disabled"

result[id] := verdict(ok, {"running": input.mac.selinux_mode, "configured": input.mac.selinux_config_mode}) if {
	id := "selinux-not-disabled"
	ok := all_true([input.mac.selinux_mode != "disabled", input.mac.selinux_config_mode in {"enforcing", "permissive"}])
}

checks[id] := chk(
	"Ensure SETroubleshoot is not installed", "low", ["packages"],
	"SETroubleshoot is a desktop notification service a server does not need.",
	"dnf remove setroubleshoot",
	["CM-7"], ["4.8"],
) if id := "selinux-no-setroubleshoot"

result[id] := verdict(count(found) == 0, {"installed": found}) if { id := "selinux-no-setroubleshoot"; found := installed_of(["setroubleshoot"]) }

checks[id] := chk(
	"Ensure the MCS Translation Service (mcstrans) is not installed", "low", ["packages"],
	"mcstrans is rarely needed and adds a root daemon.",
	"dnf remove mcstrans",
	["CM-7"], ["4.8"],
) if id := "selinux-no-mcstrans"

result[id] := verdict(count(found) == 0, {"installed": found}) if { id := "selinux-no-mcstrans"; found := installed_of(["mcstrans"]) }

# ---- boot loader ----
checks[id] := chk(
	"Ensure bootloader password is set", "high", ["boot.config_path", "boot.password_set"],
	"Without a boot loader password anyone at the console can edit the kernel command line and boot into a root shell.",
	"grub-mkpasswd-pbkdf2 (grub2-setpassword on RHEL), add `set superusers` and `password_pbkdf2` to the GRUB configuration, update-grub.",
	["AC-3", "IA-5"], ["3.3"],
) if id := "bootloader-password"

result[id] := not_applicable("no GRUB configuration found") if { id := "bootloader-password"; input.boot.config_path == "" }

result[id] := verdict(input.boot.password_set, {"config": input.boot.config_path, "password_set": input.boot.password_set}) if { id := "bootloader-password"; input.boot.config_path != "" }

checks[id] := chk(
	"Ensure access to bootloader config is configured", "medium", ["boot.config_path", "boot.config_mode", "boot.config_uid", "boot.config_gid"],
	"The boot loader configuration holds the password hash and the kernel arguments.",
	"chown root:root /boot/grub/grub.cfg && chmod u-x,go-rwx /boot/grub/grub.cfg",
	["AC-3"], ["3.3"],
) if id := "bootloader-config-access"

result[id] := not_applicable("no GRUB configuration found") if { id := "bootloader-config-access"; input.boot.config_path == "" }

result[id] := verdict(ok, {"config": b.config_path, "mode": mode_string(b.config_mode), "uid": b.config_uid, "gid": b.config_gid}) if {
	id := "bootloader-config-access"
	b := input.boot
	b.config_path != ""
	ok := all_true([mode_within(b.config_mode, 384), b.config_uid == 0, b.config_gid == 0])
}

# ---- process hardening ----
checks[id] := object.union(chk(
	"Ensure address space layout randomization is enabled", "medium", ["sysctl.kernel.randomize_va_space"],
	"Randomized memory layout makes memory corruption exploits unreliable.",
	"Set kernel.randomize_va_space = 2 in /etc/sysctl.d/60-kernel.conf and sysctl --system.",
	["SI-16"], ["4.1"],
), {"action": {"kind": "sysctl", "key": "kernel.randomize_va_space", "value": "2"}}) if id := "aslr-enabled"

result[id] := verdict(v == "2", {"kernel.randomize_va_space": v}) if { id := "aslr-enabled"; v := sysctl("kernel.randomize_va_space") }

checks[id] := object.union(chk(
	"Ensure ptrace_scope is restricted", "medium", ["sysctl.kernel.yama.ptrace_scope"],
	"Unrestricted ptrace lets any process of a user read the memory of that user's other processes (credentials in agents and browsers).",
	"Set kernel.yama.ptrace_scope = 1 in /etc/sysctl.d/60-kernel.conf and sysctl --system.",
	["AC-6"], ["4.1"],
), {"action": {"kind": "sysctl", "key": "kernel.yama.ptrace_scope", "value": "1"}}) if id := "ptrace-restricted"

result[id] := verdict((v in {"1", "2", "3"}), {"kernel.yama.ptrace_scope": v}) if { id := "ptrace-restricted"; v := sysctl("kernel.yama.ptrace_scope") }

checks[id] := chk(
	"Ensure core dumps are restricted", "medium", ["core_dumps.hard_core_limits", "core_dumps.systemd_coredump", "sysctl.fs.suid_dumpable", "packages"],
	"Core dumps of privileged programs can hold secrets and land where users can read them.",
	"Add `* hard core 0` to /etc/security/limits.d/, set fs.suid_dumpable = 0, and with systemd-coredump set Storage=none and ProcessSizeMax=0 in /etc/systemd/coredump.conf.d/.",
	["CM-6", "SC-28"], ["4.1"],
) if id := "core-dumps-restricted"

result[id] := verdict(ok, {"hard_core_limits": limits, "fs.suid_dumpable": suid, "systemd_coredump": coredump}) if {
	id := "core-dumps-restricted"
	limits := input.core_dumps.hard_core_limits
	suid := sysctl("fs.suid_dumpable")
	coredump_installed := "systemd-coredump" in installed
	coredump := object.get(input.core_dumps, "systemd_coredump", {})
	coredump_ok := any_true([
		coredump_installed == false,
		all_true([object.get(coredump, "Storage", "") == "none", object.get(coredump, "ProcessSizeMax", "") == "0"]),
	])
	ok := all_true([("*=0" in limits), suid == "0", coredump_ok])
}

# ---- banners ----
banners := {
	"motd": "/etc/motd",
	"issue": "/etc/issue",
	"issue-net": "/etc/issue.net",
}

banner_kind := {"motd": "message of the day", "issue": "local login warning banner", "issue-net": "remote login warning banner"}

banner_by_path := {b.path: b | some b in input.banners}

checks[id] := chk(
	sprintf("Ensure %s is configured properly", [banner_kind[slug]]),
	"low",
	["banners", "os.id"],
	"Escape sequences such as \\r and \\v, or the distribution's name, tell an attacker which exploits to try before they log in.",
	sprintf("Write the site's warning text to %s, without \\m, \\r, \\s, \\v or the OS name.", [path]),
	["AC-8"], ["4.1"],
) if {
	some slug, path in banners
	id := sprintf("banner-%s-content", [slug])
}

result[id] := verdict(count(found) == 0, {"path": path, "exists": object.get(b, "exists", false), "found": found}) if {
	some slug, path in banners
	id := sprintf("banner-%s-content", [slug])
	b := object.get(banner_by_path, path, {})
	text := lower(object.get(b, "text", ""))
	os_name := lower(object.get(object.get(input, "os", {}), "id", ""))
	escapes := [e | some e in ["\\m", "\\r", "\\s", "\\v"]; contains(text, e)]
	# (Iterating, not `[os_name | os_name != ""; …]`: regorus's compiled evaluation (0.14) leaves
	# a comprehension over no iteration undefined when it outputs an outer variable.)
	names := [n | some n in [os_name]; n != ""; contains(text, n)]
	found := array.concat(escapes, names)
}

checks[id] := object.union(chk(
	sprintf("Ensure access to %s is configured", [path]),
	"low",
	[sprintf("files[%s]", [path])],
	"Users must not be able to change what others see at login.",
	sprintf("chown root:root %s && chmod u-x,go-wx %s", [path, path]),
	["AC-3"], ["3.3"],
), {"action": {"kind": "file_mode", "path": path, "mode": "0644", "owner": "root", "group": "root", "allowed_groups": ["root"]}}) if {
	some slug, path in banners
	id := sprintf("banner-%s-access", [slug])
}

result[id] := file_result(path, 420, {"root"}) if {
	some slug, path in banners
	id := sprintf("banner-%s-access", [slug])
}

# A file's owner, group and mode: root-owned, group in `groups`, no bits beyond `loosest`;
# not applicable when the file does not exist. (One clause, its `else` evaluated only for a
# missing file; the helpers written out: each call costs regorus's VM as much as the test.)
file_result(path, loosest, groups) := verdict(ok, file_state(f)) if {
	f := files_by_path[path]
	f.exists
	ok := (false in [bits.and(f.mode, bits.negate(loosest)) == 0, f.uid == 0, f.group in groups]) == false
} else := not_applicable(sprintf("%s does not exist", [path]))

# ---- Ubuntu: prelink and apport ----
checks[id] := chk(
	"Ensure prelink is not installed", "low", ["packages"],
	"prelink rewrites binaries, which defeats integrity checking (AIDE) and can weaken address space layout randomization.",
	"prelink -ua && apt purge prelink",
	["CM-7", "SI-7"], ["4.8"],
) if id := "prelink-not-installed"

result[id] := verdict(count(found) == 0, {"installed": found}) if { id := "prelink-not-installed"; found := installed_of(["prelink"]) }

checks[id] := chk(
	"Ensure Automatic Error Reporting is not enabled", "low", ["packages", "units"],
	"Apport collects crash data, which can hold secrets, and sends it off the host.",
	"Set enabled=0 in /etc/default/apport and systemctl stop and mask apport.service (or apt purge apport).",
	["CM-7", "SC-28"], ["4.8"],
) if id := "apport-disabled"

result[id] := verdict(ok, {"installed": found, "unit": unit_state("apport.service")}) if {
	id := "apport-disabled"
	found := installed_of(["apport"])
	ok := any_true([count(found) == 0, unit_in_use("apport.service") == false])
}
