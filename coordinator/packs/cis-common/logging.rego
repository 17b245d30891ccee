# Logging (journald, rsyslog), file integrity (AIDE) and auditd.
package rampart.lib.cis

import rego.v1

journald := object.get(object.get(input, "logging", {}), "journald", {})

rsyslog_in_use if unit_in_use("rsyslog.service")

checks[id] := chk(
	"Ensure journald service is enabled and active", "medium", ["units"],
	"journald collects the kernel's and services' logs; without it they are lost.",
	"systemctl unmask systemd-journald.service && systemctl start systemd-journald.service",
	["AU-2", "AU-12"], ["8.2"],
) if id := "journald-enabled"

result[id] := verdict(unit_running("systemd-journald.service"), unit_state("systemd-journald.service")) if id := "journald-enabled"

checks[id] := chk(
	"Ensure only one logging system is in use", "low", ["units"],
	"Two systems writing the same logs waste disk and confuse retention; none loses them.",
	"Use journald alone (with systemd-journal-upload) or forward it to rsyslog; not both writing files.",
	["AU-4"], ["8.2"],
) if id := "single-logging-system"

# journald always runs; at most one syslog daemon may take its logs.
result[id] := verdict(count(in_use) <= 1, {"journald": unit_state("systemd-journald.service"), "syslog_daemons": in_use}) if {
	id := "single-logging-system"
	in_use := [n | some n in ["rsyslog.service", "syslog-ng.service"]; unit_in_use(n)]
}

# journald-only checks: apply when rsyslog is not in use.
journald_only := {
	"journald-remote-installed": {"title": "Ensure systemd-journal-remote is installed", "fix": "apt install systemd-journal-remote"},
	"journald-upload-enabled": {"title": "Ensure systemd-journal-upload is enabled and active", "fix": "systemctl unmask systemd-journal-upload.service && systemctl --now enable systemd-journal-upload.service"},
	"journald-remote-not-in-use": {"title": "Ensure systemd-journal-remote service is not in use", "fix": "systemctl stop and mask systemd-journal-remote.socket systemd-journal-remote.service"},
	"journald-no-forward-to-syslog": {"title": "Ensure journald ForwardToSyslog is disabled", "fix": "Set ForwardToSyslog=no in /etc/systemd/journald.conf.d/60-journald.conf and restart systemd-journald."},
}

checks[id] := chk(c.title, "medium", ["packages", "units", "logging.journald"], "Logs kept only on the host are lost with it and can be altered by whoever takes it; they belong on a log host.", c.fix, ["AU-4", "AU-9"], ["8.2"]) if {
	some id, c in journald_only
}

result[id] := not_applicable("rsyslog is the logging system") if {
	some id, _ in journald_only
	rsyslog_in_use
}

result[id] := verdict(("systemd-journal-remote" in installed), {"installed": ("systemd-journal-remote" in installed)}) if { id := "journald-remote-installed"; not rsyslog_in_use }

result[id] := verdict(unit_running("systemd-journal-upload.service"), unit_state("systemd-journal-upload.service")) if { id := "journald-upload-enabled"; not rsyslog_in_use }

result[id] := verdict(count(in_use) == 0, {"in_use": in_use}) if {
	id := "journald-remote-not-in-use"
	not rsyslog_in_use
	in_use := units_in_use(["systemd-journal-remote.socket", "systemd-journal-remote.service"])
}

result[id] := verdict(lower(v) == "no", {"ForwardToSyslog": v}) if {
	id := "journald-no-forward-to-syslog"
	not rsyslog_in_use
	v := object.get(journald, "ForwardToSyslog", "no")
}

journald_settings := {
	"journald-compress": {"title": "Ensure journald Compress is configured", "key": "Compress", "want": "yes", "default": "yes", "why": "Compressed journals keep more history in the same space."},
	"journald-storage": {"title": "Ensure journald Storage is configured", "key": "Storage", "want": "persistent", "default": "auto", "why": "Volatile journals are lost at reboot, with the evidence of what happened before it."},
}

checks[id] := chk(c.title, "low", [sprintf("logging.journald.%s", [c.key])], c.why, sprintf("Set %s=%s in /etc/systemd/journald.conf.d/60-journald.conf and restart systemd-journald.", [c.key, c.want]), ["AU-4"], ["8.2", "8.3"]) if {
	some id, c in journald_settings
}

result[id] := verdict(lower(v) == c.want, {c.key: v}) if {
	some id, c in journald_settings
	v := object.get(journald, c.key, c.default)
}

# rsyslog checks: apply when rsyslog is in use.
logging := object.get(input, "logging", {})

rsyslog_checks := {
	"rsyslog-installed": {"title": "Ensure rsyslog is installed", "fix": "apt install rsyslog"},
	"rsyslog-enabled": {"title": "Ensure rsyslog service is enabled and active", "fix": "systemctl unmask rsyslog.service && systemctl --now enable rsyslog.service"},
	"journald-forward-to-rsyslog": {"title": "Ensure journald is configured to send logs to rsyslog", "fix": "Set ForwardToSyslog=yes in /etc/systemd/journald.conf.d/60-journald.conf and restart systemd-journald."},
	"rsyslog-file-mode": {"title": "Ensure rsyslog log file creation mode is configured", "fix": "Set `$FileCreateMode 0640` in /etc/rsyslog.d/60-rsyslog.conf and restart rsyslog."},
	"rsyslog-no-remote-input": {"title": "Ensure rsyslog is not configured to receive logs from a remote client", "fix": "Remove imtcp/imudp module loads and inputs from the rsyslog configuration unless this is the log host."},
}

checks[id] := chk(c.title, "medium", ["packages", "units", "logging"], "rsyslog writes and forwards the logs investigations depend on; its files must not be readable by everyone.", c.fix, ["AU-4", "AU-9"], ["8.2"]) if {
	some id, c in rsyslog_checks
}

result[id] := not_applicable("journald is the logging system (rsyslog is not in use)") if {
	some id, _ in rsyslog_checks
	not rsyslog_in_use
}

result[id] := verdict(("rsyslog" in installed), {"installed": ("rsyslog" in installed)}) if { id := "rsyslog-installed"; rsyslog_in_use }

result[id] := verdict(unit_running("rsyslog.service"), unit_state("rsyslog.service")) if { id := "rsyslog-enabled"; rsyslog_in_use }

result[id] := verdict(lower(v) == "yes", {"ForwardToSyslog": v}) if {
	id := "journald-forward-to-rsyslog"
	rsyslog_in_use
	v := object.get(journald, "ForwardToSyslog", "no")
}

result[id] := verdict(ok, {"FileCreateMode": v}) if {
	id := "rsyslog-file-mode"
	rsyslog_in_use
	v := object.get(object.get(logging, "rsyslog", {}), "FileCreateMode", "0644")
	ok := all_true([regex.match(`^0?[0-7]{3}$`, v), mode_within(octal(trim_prefix(v, "0")), 416)])
}

result[id] := verdict(count(found) == 0, {"network_inputs": found}) if {
	id := "rsyslog-no-remote-input"
	rsyslog_in_use
	found := [m | some m in object.get(logging, "rsyslog_modules", []); m in {"imtcp", "imudp", "imrelp"}]
}

# ---- AIDE ----
aide_package := by_family({"deb": "aide", "rpm": "aide"})

checks[id] := chk(
	"Ensure AIDE is installed", "medium", ["packages"],
	"A file integrity checker notices changed system files: the trace most intrusions leave.",
	"apt install aide aide-common && aideinit (dnf install aide && aide --init)",
	["SI-7"], ["3.14"],
) if id := "aide-installed"

result[id] := verdict((aide_package in installed), {"installed": installed_of(["aide", "aide-common"])}) if id := "aide-installed"

checks[id] := chk(
	"Ensure filesystem integrity is regularly checked", "medium", ["units"],
	"An integrity database that is never compared finds nothing.",
	"systemctl --now enable dailyaidecheck.timer (or aidecheck.timer), or run aide --check from cron.",
	["SI-7"], ["8.5"],
) if id := "aide-scheduled"

result[id] := verdict(count(timers) > 0, {"enabled_timers": timers}) if {
	id := "aide-scheduled"
	timers := [t | some t in ["dailyaidecheck.timer", "aidecheck.timer"]; unit_enabled(t)]
}

# ---- auditd ----
audit := object.get(input, "audit", {})

checks[id] := chk(
	"Ensure auditd packages are installed", "medium", ["packages"],
	"auditd records security-relevant kernel events: who ran what, changed which file.",
	"apt install auditd audispd-plugins (dnf install audit)",
	["AU-2", "AU-12"], ["8.5"],
) if id := "auditd-installed"

result[id] := verdict(count(found) > 0, {"installed": found}) if { id := "auditd-installed"; found := installed_of(by_family({"deb": ["auditd"], "rpm": ["audit"]})) }

checks[id] := chk(
	"Ensure auditd service is enabled and active", "medium", ["units"],
	"Installed but stopped, auditd records nothing.",
	"systemctl unmask auditd && systemctl --now enable auditd",
	["AU-12"], ["8.2"],
) if id := "auditd-enabled"

result[id] := verdict(unit_running("auditd.service"), unit_state("auditd.service")) if id := "auditd-enabled"

checks[id] := chk(
	"Ensure auditing for processes that start prior to auditd is enabled", "low", ["boot.entry_args"],
	"Without audit=1, processes started before auditd are never audited.",
	"Add audit=1 to GRUB_CMDLINE_LINUX in /etc/default/grub and update-grub.",
	["AU-12"], ["8.2"],
) if id := "auditd-early-boot"

result[id] := verdict(("audit=1" in input.boot.entry_args), {"entry_args": input.boot.entry_args}) if id := "auditd-early-boot"

checks[id] := chk(
	"Ensure audit_backlog_limit is sufficient", "low", ["boot.entry_args"],
	"A small backlog drops events during boot.",
	"Add audit_backlog_limit=8192 to GRUB_CMDLINE_LINUX and update-grub.",
	["AU-12"], ["8.2"],
) if id := "auditd-backlog"

result[id] := verdict(ok, {"audit_backlog_limit": limits}) if {
	id := "auditd-backlog"
	limits := [trim_prefix(a, "audit_backlog_limit=") | some a in input.boot.entry_args; startswith(a, "audit_backlog_limit=")]
	ok := any_true([in_range(l, 8192, 100000000) | some l in limits])
}

audit_config := object.get(audit, "config", {})

checks[id] := chk(
	"Ensure audit log storage size is configured", "low", ["audit.config.max_log_file"],
	"Logs sized to the site's retention are kept as long as needed.",
	"Set max_log_file = <MB> in /etc/audit/auditd.conf.",
	["AU-4"], ["8.3"],
) if id := "auditd-log-size"

result[id] := verdict(in_range(v, 1, 1000000), {"max_log_file": v}) if { id := "auditd-log-size"; v := object.get(audit_config, "max_log_file", "") }

checks[id] := chk(
	"Ensure audit logs are not automatically deleted", "medium", ["audit.config.max_log_file_action"],
	"Rotated-away audit logs lose the history of an intrusion.",
	"Set max_log_file_action = keep_logs in /etc/audit/auditd.conf.",
	["AU-4", "AU-9"], ["8.3"],
) if id := "auditd-keep-logs"

result[id] := verdict(lower(v) == "keep_logs", {"max_log_file_action": v}) if { id := "auditd-keep-logs"; v := object.get(audit_config, "max_log_file_action", "") }

# Watches of files the audit rules must cover, on disk and loaded.
audit_watches := {
	"audit-sudoers": {"title": "Ensure changes to system administration scope (sudoers) is collected", "paths": ["/etc/sudoers", "/etc/sudoers.d"]},
	"audit-identity": {"title": "Ensure events that modify user/group information are collected", "paths": ["/etc/group", "/etc/passwd", "/etc/gshadow", "/etc/shadow", "/etc/security/opasswd"]},
	"audit-mac-policy": {"title": "Ensure events that modify the system's Mandatory Access Controls are collected", "paths": by_family({"deb": ["/etc/apparmor/", "/etc/apparmor.d/"], "rpm": ["/etc/selinux", "/usr/share/selinux"]})},
	"audit-logins": {"title": "Ensure login and logout events are collected", "paths": ["/var/log/lastlog", "/var/run/faillock"]},
	"audit-session": {"title": "Ensure session initiation information is collected", "paths": ["/var/run/utmp", "/var/log/wtmp", "/var/log/btmp"]},
}

checks[id] := chk(c.title, "low", ["audit.disk_rules", "audit.loaded_rules"], "Audit records of these changes show who changed access, identities or sessions.", sprintf("Add `-w PATH -p wa -k KEY` for %s to /etc/audit/rules.d/50-*.rules and run augenrules --load.", [concat(", ", c.paths)]), ["AU-2", "AU-12"], ["8.5"]) if {
	some id, c in audit_watches
}

watched(rules, path) if {
	some r in rules
	r.kind in {"watch", "syscall"}
	trim_suffix(r.path, "/") == trim_suffix(path, "/")
	contains(r.perms, "w")
}

result[id] := verdict(count(missing) == 0, {"missing_on_disk": missing_disk, "missing_loaded": missing_loaded, "loaded_source": object.get(audit, "loaded_source", "")}) if {
	some id, c in audit_watches
	disk := object.get(audit, "disk_rules", [])
	loaded := object.get(audit, "loaded_rules", [])
	missing_disk := [p | some p in c.paths; not watched(disk, p)]
	# Loaded rules are known on a real host only; a fixture is judged by its files.
	missing_loaded := [p | some p in c.paths; object.get(audit, "loaded_source", "") != ""; not watched(loaded, p)]
	missing := array.concat(missing_disk, missing_loaded)
}

checks[id] := chk(
	"Ensure the audit configuration is immutable", "medium", ["audit.disk_rules"],
	"With -e 2, rules cannot be changed until reboot, so an intruder cannot quietly stop auditing.",
	"Add `-e 2` as the last line of /etc/audit/rules.d/99-finalize.rules and run augenrules --load.",
	["AU-9"], ["3.3", "8.5"],
) if id := "audit-immutable"

result[id] := verdict(ok, {"last_rule": last}) if {
	id := "audit-immutable"
	rules := object.get(audit, "disk_rules", [])
	last := last_rule(rules)
	ok := last == "-e 2"
}

last_rule(rules) := rules[count(rules) - 1].text if count(rules) > 0

last_rule(rules) := "" if count(rules) == 0
