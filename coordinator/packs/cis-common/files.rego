# Permissions of the account databases and other sensitive files, world-writable and unowned
# files, and the integrity of users and groups.
package rampart.lib.cis

import rego.v1

sensitive_files := {
	"passwd": {"path": "/etc/passwd", "max": 420, "groups": {"root"}},
	"passwd-backup": {"path": "/etc/passwd-", "max": 420, "groups": {"root"}},
	"group": {"path": "/etc/group", "max": 420, "groups": {"root"}},
	"group-backup": {"path": "/etc/group-", "max": 420, "groups": {"root"}},
	"shadow": {"path": "/etc/shadow", "max": 416, "rpm_max": 0, "groups": {"root", "shadow"}},
	"shadow-backup": {"path": "/etc/shadow-", "max": 416, "rpm_max": 0, "groups": {"root", "shadow"}},
	"gshadow": {"path": "/etc/gshadow", "max": 416, "rpm_max": 0, "groups": {"root", "shadow"}},
	"gshadow-backup": {"path": "/etc/gshadow-", "max": 416, "rpm_max": 0, "groups": {"root", "shadow"}},
	"shells": {"path": "/etc/shells", "max": 420, "groups": {"root"}},
	"opasswd": {"path": "/etc/security/opasswd", "max": 384, "groups": {"root"}},
}

checks[id] := object.union(chk(
	sprintf("Ensure permissions on %s are configured", [c.path]),
	"medium",
	[sprintf("files[%s]", [c.path])],
	"The account databases hold who may log in and, in the shadow files, the password hashes; only root may change them and only root (and group shadow) read the hashes.",
	sprintf("chown root:root %s && chmod %s %s%s", [c.path, mode_string(c.max), c.path, rpm_mode_note(c)]),
	["AC-3", "AC-6"], ["3.3"],
), {"action": {"kind": "file_mode", "path": c.path, "mode": mode_string(c.max), "owner": "root", "group": "root", "allowed_groups": c.groups}}) if {
	some slug, c in sensitive_files
	id := sprintf("file-%s-permissions", [slug])
}

result[id] := file_result(c.path, by_family({"deb": c.max, "rpm": object.get(c, "rpm_max", c.max)}), c.groups) if {
	some slug, c in sensitive_files
	id := sprintf("file-%s-permissions", [slug])
}

# The shadow files are 0640 root:shadow on Debian and Ubuntu, 0000 on RHEL (root needs no
# permission bits to read them).
rpm_mode_note(c) := sprintf(" (RHEL: chmod %s)", [mode_string(c.rpm_max)]) if "rpm_max" in object.keys(c)

rpm_mode_note(c) := "" if not "rpm_max" in object.keys(c)

# ---- the filesystem walk ----
file_walk := object.get(input, "file_walk", {})

# Findings stand; an empty result from a walk that stopped early proves nothing.
walk_verdict(count_key, list_key) := verdict(false, {"count": file_walk[count_key], "paths": file_walk[list_key], "walked": file_walk.walked, "budget_hit": file_walk.budget_hit}) if file_walk[count_key] > 0

walk_verdict(count_key, list_key) := {"status": "error", "evidence": {"error": sprintf("the file walk stopped after %d entries (its budget) without finding any; the rest of the disk was not looked at", [file_walk.walked])}} if {
	file_walk[count_key] == 0
	file_walk.budget_hit
}

walk_verdict(count_key, list_key) := verdict(true, {"count": 0, "walked": file_walk.walked}) if {
	file_walk[count_key] == 0
	not file_walk.budget_hit
}

checks[id] := chk(
	"Ensure world writable files and directories are secured", "medium", ["file_walk.world_writable", "file_walk.no_sticky_dirs"],
	"Any user can change a world-writable file; a world-writable folder without the sticky bit lets any user delete others' files.",
	"chmod o-w FILE for each file listed; chmod +t DIR for each folder listed.",
	["AC-3"], ["3.3"],
) if id := "world-writable"

result[id] := v if {
	id := "world-writable"
	files := object.get(file_walk, "world_writable_count", 0)
	dirs := object.get(file_walk, "no_sticky_dirs_count", 0)
	v := world_writable_verdict(files + dirs)
}

world_writable_verdict(n) := verdict(false, {"files": file_walk.world_writable, "files_count": file_walk.world_writable_count, "dirs_without_sticky": file_walk.no_sticky_dirs, "dirs_count": file_walk.no_sticky_dirs_count, "walked": file_walk.walked}) if n > 0

world_writable_verdict(n) := walk_verdict("world_writable_count", "world_writable") if n == 0

checks[id] := chk(
	"Ensure no files or directories without an owner and a group exist", "medium", ["file_walk.unowned", "file_walk.ungrouped"],
	"A file whose owner no longer exists will belong to the next account given that id.",
	"chown USER:GROUP each file listed (or remove it).",
	["AC-3"], ["3.3"],
) if id := "no-unowned-files"

result[id] := v if {
	id := "no-unowned-files"
	n := object.get(file_walk, "unowned_count", 0) + object.get(file_walk, "ungrouped_count", 0)
	v := unowned_verdict(n)
}

unowned_verdict(n) := verdict(false, {"unowned": file_walk.unowned, "unowned_count": file_walk.unowned_count, "ungrouped": file_walk.ungrouped, "ungrouped_count": file_walk.ungrouped_count, "walked": file_walk.walked}) if n > 0

unowned_verdict(n) := walk_verdict("unowned_count", "unowned") if n == 0

# ---- users and groups ----
checks[id] := chk(
	"Ensure accounts in /etc/passwd use shadowed passwords", "high", ["accounts"],
	"A hash in /etc/passwd is readable by every user.",
	"pwconv",
	["IA-5(1)"], ["3.11"],
) if id := "accounts-shadowed"

result[id] := verdict(found == [], {"not_shadowed": found}) if {
	id := "accounts-shadowed"
	found := sort([a.name | some a in input.accounts; a.password == "unknown"])
}

checks[id] := chk(
	"Ensure /etc/shadow password fields are not empty", "critical", ["accounts"],
	"An empty password lets anyone log in as that account.",
	"passwd -l USER for each account listed.",
	["IA-5"], ["5.2"],
) if id := "no-empty-passwords"

result[id] := verdict(found == [], {"empty": found}) if {
	id := "no-empty-passwords"
	found := sort([a.name | some a in input.accounts; a.password == "empty"])
}

checks[id] := chk(
	"Ensure all groups in /etc/passwd exist in /etc/group", "low", ["accounts", "groups"],
	"A primary group that does not exist will be whatever group is created with that id next.",
	"Create the missing groups or change the accounts' primary groups.",
	["AC-2"], ["3.3"],
) if id := "passwd-groups-exist"

result[id] := verdict(found == [], {"missing": found}) if {
	id := "passwd-groups-exist"
	gids := {g.gid | some g in input.groups}
	found := sort([sprintf("%s (gid %d)", [a.name, a.gid]) | some a in input.accounts; not a.gid in gids])
}

checks[id] := chk(
	"Ensure shadow group is empty", "medium", ["accounts", "groups"],
	"Members of group shadow read every password hash.",
	"gpasswd -d USER shadow for each member; usermod -g GROUP USER for accounts whose primary group is shadow.",
	["AC-6"], ["3.3"],
) if id := "shadow-group-empty"

result[id] := not_applicable("there is no shadow group") if { id := "shadow-group-empty"; count([g | some g in input.groups; g.name == "shadow"]) == 0 }

result[id] := verdict(count(found) == 0, {"members": members, "primary": primary}) if {
	id := "shadow-group-empty"
	some g in input.groups
	g.name == "shadow"
	members := g.members
	primary := sort([a.name | some a in input.accounts; a.gid == g.gid])
	found := array.concat(members, primary)
}

# None when the values make a set of the same size (the usual case, and the cheaper test);
# else, sorted, a duplicate sits next to its twin: O(n log n), not a count per entry.
duplicates(values) := [] if {
	count({v | some v in values}) == count(values)
} else := sort({sprintf("%v", [v]) | sorted := sort(values); some i, v in sorted; i > 0; sorted[i - 1] == v})

uniqueness := {
	"no-duplicate-uids": {"title": "Ensure no duplicate UIDs exist", "values": [a.uid | some a in input.accounts], "facts": ["accounts"]},
	"no-duplicate-gids": {"title": "Ensure no duplicate GIDs exist", "values": [g.gid | some g in input.groups], "facts": ["groups"]},
	"no-duplicate-user-names": {"title": "Ensure no duplicate user names exist", "values": [a.name | some a in input.accounts], "facts": ["accounts"]},
	"no-duplicate-group-names": {"title": "Ensure no duplicate group names exist", "values": [g.name | some g in input.groups], "facts": ["groups"]},
}

checks[id] := chk(c.title, "medium", c.facts, "Shared ids or names make ownership, permissions and audit trails ambiguous.", "Give each account and group its own id and name.", ["IA-2", "AU-3"], ["5.1"]) if {
	some id, c in uniqueness
}

result[id] := verdict(found == [], {"duplicates": found}) if {
	some id, c in uniqueness
	found := duplicates(c.values)
}

# The walk's findings one kind at a time (RHEL numbers them apart).
walk_kinds := {
	"world-writable-files": {"title": "Ensure no world writable files exist", "key": "world_writable", "why": "Any user can change a world-writable file.", "fix": "chmod o-w FILE for each file listed."},
	"sticky-dirs": {"title": "Ensure sticky bit is set on all world-writable directories", "key": "no_sticky_dirs", "why": "A world-writable folder without the sticky bit lets any user delete or replace others' files.", "fix": "chmod +t DIR for each folder listed."},
	"no-unowned": {"title": "Ensure no unowned files or directories exist", "key": "unowned", "why": "A file whose owner no longer exists will belong to the next account given that id.", "fix": "chown USER FILE for each file listed (or remove it)."},
	"no-ungrouped": {"title": "Ensure no ungrouped files or directories exist", "key": "ungrouped", "why": "A file whose group no longer exists will belong to the next group given that id.", "fix": "chgrp GROUP FILE for each file listed (or remove it)."},
}

checks[id] := chk(c.title, "medium", [sprintf("file_walk.%s", [c.key])], c.why, c.fix, ["AC-3"], ["3.3"]) if {
	some id, c in walk_kinds
}

result[id] := walk_verdict(sprintf("%s_count", [c.key]), c.key) if {
	some id, c in walk_kinds
}
