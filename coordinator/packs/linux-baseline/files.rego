# Permissions and ownership of sensitive files and folders.
package rampart.pack.linux_baseline

import rego.v1

# max: the loosest permission bits allowed; groups: acceptable owning groups.
file_checks := {
	"file-etc-passwd": {"path": "/etc/passwd", "max": 420, "groups": {"root"}, "severity": "medium", "cis": ["7.1.1"]},
	"file-etc-shadow": {"path": "/etc/shadow", "max": 416, "groups": {"root", "shadow"}, "severity": "high", "cis": ["7.1.5"]},
	"file-etc-group": {"path": "/etc/group", "max": 420, "groups": {"root"}, "severity": "medium", "cis": ["7.1.3"]},
	"file-etc-gshadow": {"path": "/etc/gshadow", "max": 416, "groups": {"root", "shadow"}, "severity": "high", "cis": ["7.1.7"]},
	"file-sshd-config": {"path": "/etc/ssh/sshd_config", "max": 384, "groups": {"root"}, "severity": "medium", "cis": ["5.1.1"]},
	"file-etc-crontab": {"path": "/etc/crontab", "max": 384, "groups": {"root"}, "severity": "medium", "cis": ["2.4.1.2"]},
	"file-cron-hourly": {"path": "/etc/cron.hourly", "max": 448, "groups": {"root"}, "severity": "medium", "cis": ["2.4.1.3"]},
	"file-cron-daily": {"path": "/etc/cron.daily", "max": 448, "groups": {"root"}, "severity": "medium", "cis": ["2.4.1.4"]},
	"file-cron-weekly": {"path": "/etc/cron.weekly", "max": 448, "groups": {"root"}, "severity": "medium", "cis": ["2.4.1.5"]},
	"file-cron-monthly": {"path": "/etc/cron.monthly", "max": 448, "groups": {"root"}, "severity": "medium", "cis": ["2.4.1.6"]},
	"file-cron-d": {"path": "/etc/cron.d", "max": 448, "groups": {"root"}, "severity": "medium", "cis": ["2.4.1.7"]},
}

meta[id] := object.union(
	check(
		sprintf("%s is owned by root and no looser than %s", [c.path, mode_string(c.max)]),
		c.severity,
		"Loose permissions let local users read secrets or change what runs as root.",
		sprintf("chown root:root %s && chmod %s %s", [c.path, mode_string(c.max), c.path]),
		c.cis,
		["AC-3", "AC-6"],
	),
	{"action": {"kind": "file_mode", "path": c.path, "mode": mode_string(c.max), "owner": "root", "group": "root", "allowed_groups": c.groups}},
) if {
	some id, c in file_checks
}

result[id] := not_applicable(sprintf("%s does not exist", [c.path])) if {
	some id, c in file_checks
	f := file(c.path)
	not f.exists
}

result[id] := verdict(ok, {"path": c.path, "mode": mode_string(f.mode), "owner": f.owner, "group": f.group}) if {
	some id, c in file_checks
	f := file(c.path)
	f.exists
	ok := all_true([mode_within(f.mode, c.max), f.uid == 0, f.group in c.groups])
}
