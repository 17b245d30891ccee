# Privilege escalation (sudo, su), PAM, password policy, accounts and the login environment.
package rampart.lib.cis

import rego.v1

# ---- sudo ----
sudo := object.get(input, "sudo", {})

sudo_defaults := object.get(sudo, "defaults", [])

sudo_installed if "sudo" in installed

sudo_installed if "sudo-ldap" in installed

checks[id] := chk(
	"Ensure sudo is installed", "medium", ["packages"],
	"sudo gives administrators root rights per command, logged under their own name.",
	"apt install sudo (dnf install sudo)",
	["AC-6"], ["5.4"],
) if id := "sudo-installed"

result[id] := verdict(count(found) > 0, {"installed": found}) if { id := "sudo-installed"; found := installed_of(["sudo", "sudo-ldap"]) }

# A global Defaults flag set and never negated.
sudo_flag(name) := all_true([
	count([d | some d in sudo_defaults; d.name == name; d.scope == ""; not d.negated]) > 0,
	count([d | some d in sudo_defaults; d.name == name; d.negated]) == 0,
])

sudo_checks := {
	"sudo-use-pty": {"title": "Ensure sudo commands use pty", "facts": ["sudo.defaults"], "why": "Without a pty, a command run with sudo can keep a process running in the background after sudo exits.", "fix": "Add `Defaults use_pty` to /etc/sudoers (visudo) and remove any `Defaults !use_pty`.", "nist": ["AC-6"], "controls": ["5.4"]},
	"sudo-log-file": {"title": "Ensure sudo log file exists", "facts": ["sudo.defaults"], "why": "A dedicated sudo log keeps a record of every privileged command.", "fix": "Add `Defaults logfile=\"/var/log/sudo.log\"` to /etc/sudoers (visudo).", "nist": ["AU-2", "AU-12"], "controls": ["8.5"]},
	"sudo-requires-password": {"title": "Ensure users must provide password for privilege escalation", "facts": ["sudo.nopasswd"], "why": "NOPASSWD lets anyone who gets a user's session act as root.", "fix": "Remove NOPASSWD from the sudoers rules (visudo -f FILE).", "nist": ["IA-11"], "controls": ["5.4"]},
	"sudo-reauthentication": {"title": "Ensure re-authentication for privilege escalation is not disabled globally", "facts": ["sudo.defaults"], "why": "`!authenticate` turns sudo into a root shell for everyone it names.", "fix": "Remove `!authenticate` from every Defaults line (visudo -f FILE).", "nist": ["IA-11"], "controls": ["5.4"]},
	"sudo-timeout": {"title": "Ensure sudo authentication timeout is configured correctly", "facts": ["sudo.defaults"], "why": "A long credential cache lets an unattended session escalate without the password.", "fix": "Set `Defaults timestamp_timeout=15` (or less, not negative) in /etc/sudoers.", "nist": ["IA-11"], "controls": ["5.4"]},
}

checks[id] := chk(c.title, "medium", c.facts, c.why, c.fix, c.nist, c.controls) if {
	some id, c in sudo_checks
}

result[id] := not_applicable("sudo is not installed") if {
	some id, _ in sudo_checks
	not sudo_installed
}

result[id] := verdict(sudo_flag("use_pty"), {"defaults": sudo_named("use_pty")}) if { id := "sudo-use-pty"; sudo_installed }

result[id] := verdict(count(logs) > 0, {"logfile": logs}) if {
	id := "sudo-log-file"
	sudo_installed
	logs := [d.value | some d in sudo_defaults; d.name == "logfile"; d.scope == ""; d.value != ""; not d.negated]
}

result[id] := verdict(count(rules) == 0, {"nopasswd": rules}) if {
	id := "sudo-requires-password"
	sudo_installed
	rules := object.get(sudo, "nopasswd", [])
}

result[id] := verdict(count(found) == 0, {"not_authenticate": found}) if {
	id := "sudo-reauthentication"
	sudo_installed
	found := [sprintf("Defaults%s !authenticate (%s)", [d.scope, d.file]) | some d in sudo_defaults; d.name == "authenticate"; d.negated]
}

result[id] := verdict(count(bad) == 0, {"timestamp_timeout": values, "bad": bad}) if {
	id := "sudo-timeout"
	sudo_installed
	values := [d.value | some d in sudo_defaults; d.name == "timestamp_timeout"]
	# Not set: sudo's default of 15 minutes.
	bad := [v | some v in values; not in_range(v, 0, 15)]
}

sudo_named(name) := [sprintf("Defaults%s %s%s", [d.scope, neg, name]) |
	some d in sudo_defaults
	d.name == name
	neg := {true: "!", false: ""}[d.negated]
]

# ---- su ----
pam_services := {s.name: s.entries | some s in object.get(object.get(input, "pam", {}), "services", [])}

checks[id] := chk(
	"Ensure access to the su command is restricted", "medium", ["pam.services[su]", "groups"],
	"Limiting su to an empty group makes administrators use sudo, which logs who did what.",
	"groupadd sugroup; add `auth required pam_wheel.so use_uid group=sugroup` to /etc/pam.d/su; keep the group empty.",
	["AC-6"], ["5.4"],
) if id := "su-restricted"

result[id] := verdict(count(ok_groups) > 0, {"pam_wheel": wheel, "empty_groups": ok_groups}) if {
	id := "su-restricted"
	wheel := [e.args | some e in object.get(pam_services, "su", []); e.module == "pam_wheel.so"; e.type == "auth"; e.control == "required"]
	named := [trim_prefix(a, "group=") | some args in wheel; "use_uid" in args; some a in args; startswith(a, "group=")]
	ok_groups := [g | some g in named; some gr in input.groups; gr.name == g; count(gr.members) == 0]
}

# ---- PAM ----
pam_stacks := by_family({
	"deb": ["common-auth", "common-account", "common-password", "common-session"],
	"rpm": ["system-auth", "password-auth"],
})

pam_entries(kind) := [e | some s in pam_stacks; some e in object.get(pam_services, s, []); e.type == kind]

# Each [type, module] of the host's PAM stacks, in one pass (checks test membership).
pam_kinds_modules := {[e.type, e.module] | some s in pam_stacks; some e in object.get(pam_services, s, [])}

pam_module_entries(module) := [e | some s in pam_stacks; some e in object.get(pam_services, s, []); e.module == module]

pam_packages := {
	"pam-runtime": {"title": "Ensure latest version of pam is installed", "deb": "libpam-runtime", "rpm": "pam", "min": "1.5.2"},
	"pam-modules": {"title": "Ensure libpam-modules is installed", "deb": "libpam-modules", "rpm": "pam", "min": "1.5.2"},
	"pam-pwquality-installed": {"title": "Ensure libpam-pwquality is installed", "deb": "libpam-pwquality", "rpm": "libpwquality", "min": "0"},
}

checks[id] := chk(c.title, "medium", ["packages"], "The PAM modules the password and lockout checks rely on must be present and recent.", sprintf("apt install %s (dnf install %s)", [c.deb, c.rpm]), ["IA-5"], ["5.2"]) if {
	some id, c in pam_packages
}

result[id] := verdict(ok, {"package": name, "version": versions, "minimum": c.min}) if {
	some id, c in pam_packages
	name := by_family(c)
	versions := object.get(package_versions, name, [])
	ok := any_true([version_at_least(v, c.min) | some v in versions])
}

# Compares the numeric parts of upstream versions ("1:1.5.2-6+deb12u1" → [1, 5, 2]), missing
# parts counting as 0 (arrays compare element by element). Split, not regex: each regex call
# compiles or clones its pattern in regorus.
upstream_version(v) := split(split(split(e[count(e) - 1], "-")[0], "+")[0], "~")[0] if e := split(v, ":")

version_parts(v) := [n | some x in split(upstream_version(v), "."); n := to_number(x); is_number(n)]

version_at_least(v, least) := array.concat(version_parts(v), [0, 0, 0, 0]) >= version_parts(least)

pam_enabled := {
	"pam-unix-enabled": {"title": "Ensure pam_unix module is enabled", "module": "pam_unix.so", "kinds": ["auth", "account", "password", "session"], "why": "pam_unix checks local passwords and applies password ageing.", "controls": ["3.3"]},
	"pam-faillock-enabled": {"title": "Ensure pam_faillock module is enabled", "module": "pam_faillock.so", "kinds": ["auth", "account"], "why": "pam_faillock locks an account after repeated failed logins.", "controls": ["6.2"]},
	"pam-pwquality-enabled": {"title": "Ensure pam_pwquality module is enabled", "module": "pam_pwquality.so", "kinds": ["password"], "why": "pam_pwquality rejects weak new passwords.", "controls": ["5.2"]},
	"pam-pwhistory-enabled": {"title": "Ensure pam_pwhistory module is enabled", "module": "pam_pwhistory.so", "kinds": ["password"], "why": "pam_pwhistory stops users reusing recent passwords.", "controls": ["5.2"]},
}

checks[id] := chk(c.title, "medium", ["pam.services"], c.why, sprintf("Enable %s in the %s stacks (pam-auth-update on Debian/Ubuntu, authselect on RHEL).", [c.module, concat("/", c.kinds)]), ["IA-5", "AC-7"], c.controls) if {
	some id, c in pam_enabled
}

result[id] := verdict(count(missing) == 0, {"module": c.module, "missing_in": missing}) if {
	some id, c in pam_enabled
	missing := [k | some k in c.kinds; not [k, c.module] in pam_kinds_modules]
}

# A module's settings: its configuration file, overridden by arguments on its PAM lines.
module_settings(conf, module) := object.union(conf, {k: v |
	some e in pam_module_entries(module)
	some a in e.args
	parts := split(a, "=")
	k := parts[0]
	v := concat("=", array.slice(parts, 1, count(parts)))
})

pam := object.get(input, "pam", {})

faillock := module_settings(object.get(pam, "faillock", {}), "pam_faillock.so")

pwquality := module_settings(object.get(pam, "pwquality", {}), "pam_pwquality.so")

pwhistory := module_settings(object.get(pam, "pwhistory", {}), "pam_pwhistory.so")

# Each: the settings it reads, their defaults when unset, and whether the values pass.
pam_settings := {
	"faillock-deny": {"title": "Ensure password failed attempts lockout is configured", "module": "faillock", "controls": ["6.2"], "fix": "Set `deny = 5` (or less) in /etc/security/faillock.conf."},
	"faillock-unlock-time": {"title": "Ensure password unlock time is configured", "module": "faillock", "controls": ["6.2"], "fix": "Set `unlock_time = 900` (or more, or 0 for manual unlock) in /etc/security/faillock.conf."},
	"faillock-root": {"title": "Ensure password failed attempts lockout includes root account", "module": "faillock", "controls": ["6.2"], "fix": "Set `even_deny_root` (or root_unlock_time = 60 or more) in /etc/security/faillock.conf."},
	"pwquality-difok": {"title": "Ensure password number of changed characters is configured", "module": "pwquality", "controls": ["5.2"], "fix": "Set `difok = 2` (or more) in /etc/security/pwquality.conf.d/50-pwdifok.conf."},
	"pwquality-minlen": {"title": "Ensure minimum password length is configured", "module": "pwquality", "controls": ["5.2"], "fix": "Set `minlen = 14` (or more) in /etc/security/pwquality.conf.d/50-pwlength.conf."},
	"pwquality-maxrepeat": {"title": "Ensure password same consecutive characters is configured", "module": "pwquality", "controls": ["5.2"], "fix": "Set `maxrepeat = 3` (or less, not 0) in /etc/security/pwquality.conf.d/50-pwrepeat.conf."},
	"pwquality-maxsequence": {"title": "Ensure password maximum sequential characters is configured", "module": "pwquality", "controls": ["5.2"], "fix": "Set `maxsequence = 3` (or less, not 0) in /etc/security/pwquality.conf.d/50-pwmaxsequence.conf."},
	"pwquality-dictcheck": {"title": "Ensure password dictionary check is enabled", "module": "pwquality", "controls": ["5.2"], "fix": "Remove `dictcheck = 0` from pwquality.conf and its drop-ins."},
	"pwquality-enforcing": {"title": "Ensure password quality checking is enforced", "module": "pwquality", "controls": ["5.2"], "fix": "Remove `enforcing = 0` from pwquality.conf and its drop-ins."},
	"pwquality-root": {"title": "Ensure password quality is enforced for the root user", "module": "pwquality", "controls": ["5.2"], "fix": "Add `enforce_for_root` to /etc/security/pwquality.conf.d/50-pwroot.conf."},
	"pwhistory-remember": {"title": "Ensure password history remember is configured", "module": "pwhistory", "controls": ["5.2"], "fix": "Add remember=24 to the pam_pwhistory.so line (or /etc/security/pwhistory.conf)."},
	"pwhistory-root": {"title": "Ensure password history is enforced for the root user", "module": "pwhistory", "controls": ["5.2"], "fix": "Add enforce_for_root to the pam_pwhistory.so line (or /etc/security/pwhistory.conf)."},
}

checks[id] := chk(c.title, "medium", [sprintf("pam.%s", [c.module]), "pam.services"], "Password and lockout policy is what stands between a guessed password and an account.", c.fix, ["IA-5", "AC-7"], c.controls) if {
	some id, c in pam_settings
}

result[id] := verdict(in_range(v, 1, 5), {"deny": v}) if { id := "faillock-deny"; v := object.get(faillock, "deny", "3") }

result[id] := verdict(any_true([v == "0", in_range(v, 900, 1000000000)]), {"unlock_time": v}) if { id := "faillock-unlock-time"; v := object.get(faillock, "unlock_time", "600") }

result[id] := verdict(ok, {"even_deny_root": even, "root_unlock_time": rut}) if {
	id := "faillock-root"
	even := "even_deny_root" in object.keys(faillock)
	rut := object.get(faillock, "root_unlock_time", "")
	ok := any_true([even, in_range(rut, 60, 1000000000)])
}

result[id] := verdict(in_range(v, 2, 1000), {"difok": v}) if { id := "pwquality-difok"; v := object.get(pwquality, "difok", "1") }

result[id] := verdict(in_range(v, 14, 1000), {"minlen": v}) if { id := "pwquality-minlen"; v := object.get(pwquality, "minlen", "8") }

result[id] := verdict(in_range(v, 1, 3), {"maxrepeat": v}) if { id := "pwquality-maxrepeat"; v := object.get(pwquality, "maxrepeat", "0") }

result[id] := verdict(in_range(v, 1, 3), {"maxsequence": v}) if { id := "pwquality-maxsequence"; v := object.get(pwquality, "maxsequence", "0") }

result[id] := verdict(v != "0", {"dictcheck": v}) if { id := "pwquality-dictcheck"; v := object.get(pwquality, "dictcheck", "1") }

result[id] := verdict(v != "0", {"enforcing": v}) if { id := "pwquality-enforcing"; v := object.get(pwquality, "enforcing", "1") }

result[id] := verdict(on, {"enforce_for_root": on}) if { id := "pwquality-root"; on := "enforce_for_root" in object.keys(pwquality) }

result[id] := verdict(in_range(v, 24, 100000), {"remember": v}) if { id := "pwhistory-remember"; v := object.get(pwhistory, "remember", "10") }

result[id] := verdict(on, {"enforce_for_root": on}) if { id := "pwhistory-root"; on := "enforce_for_root" in object.keys(pwhistory) }

# Arguments on the password lines of a module.
pam_line_checks := {
	"pwhistory-use-authtok": {"title": "Ensure pam_pwhistory includes use_authtok", "module": "pam_pwhistory.so", "fix": "Add use_authtok to the pam_pwhistory.so password line."},
	"pam-unix-no-nullok": {"title": "Ensure pam_unix does not include nullok", "module": "pam_unix.so", "fix": "Remove nullok from every pam_unix.so line."},
	"pam-unix-no-remember": {"title": "Ensure pam_unix does not include remember", "module": "pam_unix.so", "fix": "Remove remember=N from the pam_unix.so lines (pam_pwhistory keeps the history)."},
	"pam-unix-strong-hash": {"title": "Ensure pam_unix includes a strong password hashing algorithm", "module": "pam_unix.so", "fix": "Add sha512 or yescrypt to the pam_unix.so password line."},
	"pam-unix-use-authtok": {"title": "Ensure pam_unix includes use_authtok", "module": "pam_unix.so", "fix": "Add use_authtok to the pam_unix.so password line."},
}

checks[id] := chk(c.title, "medium", ["pam.services"], "The arguments of the password stack decide how passwords are checked, stored and reused.", c.fix, ["IA-5"], ["5.2"]) if {
	some id, c in pam_line_checks
}

module_lines(module, kind) := [e.args | some e in pam_entries(kind); e.module == module]

result[id] := verdict(ok, {"lines": lines}) if {
	id := "pwhistory-use-authtok"
	lines := module_lines("pam_pwhistory.so", "password")
	ok := all_true([count(lines) > 0, all_true([("use_authtok" in args) | some args in lines])])
}

result[id] := verdict(count(found) == 0, {"nullok_in": found}) if {
	id := "pam-unix-no-nullok"
	found := [sprintf("%s %s", [e.file, e.type]) | some e in pam_module_entries("pam_unix.so"); "nullok" in e.args]
}

result[id] := verdict(count(found) == 0, {"remember_in": found}) if {
	id := "pam-unix-no-remember"
	found := [sprintf("%s %s", [e.file, e.type]) | some e in pam_module_entries("pam_unix.so"); some a in e.args; startswith(a, "remember=")]
}

result[id] := verdict(ok, {"lines": lines}) if {
	id := "pam-unix-strong-hash"
	lines := module_lines("pam_unix.so", "password")
	ok := all_true([count(lines) > 0, all_true([any_true([("sha512" in args), ("yescrypt" in args)]) | some args in lines])])
}

result[id] := verdict(ok, {"lines": lines}) if {
	id := "pam-unix-use-authtok"
	lines := module_lines("pam_unix.so", "password")
	ok := all_true([count(lines) > 0, all_true([("use_authtok" in args) | some args in lines])])
}

# ---- password ageing (login.defs, shadow) ----
login_defs := object.get(object.get(input, "login_defs", {}), "settings", {})

useradd := object.get(object.get(input, "login_defs", {}), "useradd", {})

# Accounts with a usable password (the ones ageing applies to).
password_accounts := [a | some a in input.accounts; a.password == "set"]

checks[id] := chk(
	"Ensure password expiration is configured", "medium", ["login_defs.settings.PASS_MAX_DAYS", "accounts"],
	"A password that never expires stays useful to whoever learned it.",
	"Set PASS_MAX_DAYS 365 in /etc/login.defs and chage --maxdays 365 USER for existing users.",
	["IA-5(1)"], ["5.2"],
) if id := "password-max-days"

result[id] := verdict(ok, {"PASS_MAX_DAYS": v, "accounts_over": over}) if {
	id := "password-max-days"
	v := object.get(login_defs, "PASS_MAX_DAYS", "99999")
	over := sort([a.name | some a in password_accounts; not in_range(a.max_days, 1, 365)])
	ok := all_true([in_range(v, 1, 365), count(over) == 0])
}

checks[id] := chk(
	"Ensure password expiration warning days is configured", "low", ["login_defs.settings.PASS_WARN_AGE", "accounts"],
	"Users warned ahead of expiry choose a new password instead of a hurried one.",
	"Set PASS_WARN_AGE 7 in /etc/login.defs and chage --warndays 7 USER for existing users.",
	["IA-5(1)"], ["4.1"],
) if id := "password-warn-age"

result[id] := verdict(ok, {"PASS_WARN_AGE": v, "accounts_under": under}) if {
	id := "password-warn-age"
	v := object.get(login_defs, "PASS_WARN_AGE", "7")
	under := sort([a.name | some a in password_accounts; not in_range(a.warn_days, 7, 100000)])
	ok := all_true([in_range(v, 7, 100000), count(under) == 0])
}

checks[id] := chk(
	"Ensure strong password hashing algorithm is configured", "medium", ["login_defs.settings.ENCRYPT_METHOD"],
	"Weak hashes are cracked quickly once /etc/shadow leaks.",
	"Set ENCRYPT_METHOD YESCRYPT (or SHA512) in /etc/login.defs.",
	["IA-5(1)"], ["3.11"],
) if id := "password-hashing"

result[id] := verdict((upper(v) in {"SHA512", "YESCRYPT"}), {"ENCRYPT_METHOD": v}) if { id := "password-hashing"; v := object.get(login_defs, "ENCRYPT_METHOD", "") }

checks[id] := chk(
	"Ensure inactive password lock is configured", "medium", ["login_defs.useradd.INACTIVE", "accounts"],
	"Accounts whose password expired long ago are abandoned; they should lock.",
	"useradd -D -f 45 (RHEL: 30) and chage --inactive 45 USER for existing users.",
	["AC-2(3)"], ["5.3"],
) if id := "password-inactive"

# Days after expiry before an account locks: 45 in the Debian and Ubuntu benchmarks, 30 in RHEL's.
inactive_days_max := by_family({"deb": 45, "rpm": 30})

result[id] := verdict(ok, {"INACTIVE": v, "accounts_over": over, "at_most": inactive_days_max}) if {
	id := "password-inactive"
	v := object.get(useradd, "INACTIVE", "-1")
	over := sort([a.name | some a in password_accounts; not in_range(a.inactive_days, 0, inactive_days_max)])
	ok := all_true([in_range(v, 0, inactive_days_max), count(over) == 0])
}

checks[id] := chk(
	"Ensure all users last password change date is in the past", "low", ["accounts"],
	"A change date in the future defeats expiry.",
	"Expire the password of each account listed (passwd -e USER) and investigate how the date was set.",
	["IA-5(1)"], ["5.2"],
) if id := "password-change-in-past"

result[id] := verdict(count(future) == 0, {"future": future}) if {
	id := "password-change-in-past"
	# Days since the epoch when the facts were collected.
	today := floor(input.collected_unix_ms / 86400000)
	future := sort([a.name | some a in input.accounts; a.last_change_days > today])
}

# ---- root and system accounts ----
checks[id] := chk(
	"Ensure root is the only UID 0 account", "critical", ["accounts"],
	"Every UID 0 account is a full root login.",
	"Remove or renumber every UID 0 account other than root.",
	["AC-6"], ["5.4"],
) if id := "root-only-uid0"

result[id] := verdict(others == [], {"uid0": others}) if {
	id := "root-only-uid0"
	others := sort([a.name | some a in input.accounts; a.uid == 0; a.name != "root"])
}

checks[id] := chk(
	"Ensure root is the only GID 0 account", "high", ["accounts"],
	"Accounts in group root read and write what that group owns.",
	"usermod -g GROUP USER for every account other than root whose primary group is 0.",
	["AC-6"], ["3.3"],
) if id := "root-only-gid0-account"

result[id] := verdict(others == [], {"gid0": others}) if {
	id := "root-only-gid0-account"
	others := sort([a.name | some a in input.accounts; a.gid == 0; not a.name in {"root", "sync", "shutdown", "halt", "operator"}])
}

checks[id] := chk(
	"Ensure group root is the only GID 0 group", "high", ["groups"],
	"A second GID 0 group shares root's group rights under another name.",
	"groupmod -g NEW_GID GROUP for every group other than root with GID 0.",
	["AC-6"], ["3.3"],
) if id := "root-only-gid0-group"

result[id] := verdict(others == [], {"gid0": others}) if {
	id := "root-only-gid0-group"
	others := sort([g.name | some g in input.groups; g.gid == 0; g.name != "root"])
}

checks[id] := chk(
	"Ensure root account access is controlled", "high", ["accounts"],
	"root must have a password or be locked; an empty one is an open door.",
	"passwd root (set a strong password) or usermod -L root.",
	["IA-5"], ["3.3"],
) if id := "root-access-controlled"

result[id] := verdict((state in {"set", "locked"}), {"root_password": state}) if {
	id := "root-access-controlled"
	states := [a.password | some a in input.accounts; a.name == "root"]
	state := concat(",", states)
}

uid_min := num(object.get(login_defs, "UID_MIN", "1000"))

valid_shells := {s | some s in object.get(object.get(input, "shell", {}), "shells", []); not endswith(s, "/nologin")}

checks[id] := chk(
	"Ensure system accounts do not have a valid login shell", "medium", ["accounts", "shell.shells", "login_defs.settings.UID_MIN"],
	"A service account with a shell can be logged into if its password or keys leak.",
	"usermod -s $(command -v nologin) USER for each account listed.",
	["AC-2"], ["5.4"],
) if id := "system-accounts-no-shell"

result[id] := verdict(found == [], {"with_shell": found}) if {
	id := "system-accounts-no-shell"
	found := sort([a.name |
		some a in input.accounts
		a.uid < uid_min
		not a.name in {"root", "halt", "sync", "shutdown", "nfsnobody"}
		a.shell in valid_shells
	])
}

checks[id] := chk(
	"Ensure accounts without a valid login shell are locked", "medium", ["accounts", "shell.shells"],
	"An account meant never to log in should not have a usable password either.",
	"usermod -L USER for each account listed.",
	["AC-2"], ["5.4"],
) if id := "no-shell-accounts-locked"

result[id] := verdict(found == [], {"unlocked": found}) if {
	id := "no-shell-accounts-locked"
	found := sort([a.name |
		some a in input.accounts
		a.name != "root"
		not a.shell in valid_shells
		a.password != "locked"
	])
}

# ---- login environment ----
shell_settings := object.get(object.get(input, "shell", {}), "settings", [])

checks[id] := chk(
	"Ensure nologin is not listed in /etc/shells", "low", ["shell.shells"],
	"Programs that treat /etc/shells as the list of login shells would accept nologin accounts as real users.",
	"Remove the nologin lines from /etc/shells.",
	["CM-6"], ["4.1"],
) if id := "shells-no-nologin"

result[id] := verdict(found == [], {"listed": found}) if {
	id := "shells-no-nologin"
	found := [s | some s in object.get(object.get(input, "shell", {}), "shells", []); endswith(s, "/nologin")]
}

checks[id] := chk(
	"Ensure default user shell timeout is configured", "low", ["shell.settings"],
	"An idle root shell left open is a session anyone at the console can use.",
	"Add `readonly TMOUT=900; export TMOUT` to /etc/profile.d/50-tmout.sh.",
	["AC-12"], ["4.3"],
) if id := "shell-timeout"

result[id] := verdict(ok, {"TMOUT": [s | some s in tmout]}) if {
	id := "shell-timeout"
	tmout := [s | some s in shell_settings; s.name == "TMOUT"]
	good := [s | some s in tmout; in_range(s.value, 1, 900); s.readonly; s.exported]
	bad := [s | some s in tmout; not in_range(s.value, 1, 900)]
	ok := all_true([count(good) > 0, count(bad) == 0])
}

# umask digits to a number ("027" → 23); undefined for symbolic masks.
octal(s) := n if {
	regex.match(`^[0-7]{3,4}$`, s)
	digits := [to_number(d) | some d in split(s, "")]
	weights := {3: [64, 8, 1], 4: [512, 64, 8, 1]}[count(digits)]
	n := sum([(d * weights[i]) | some i, d in digits])
}

strong_umask(s) if bits.and(octal(s), 23) == 23

checks[id] := chk(
	"Ensure default user umask is configured", "medium", ["shell.settings", "login_defs.settings.UMASK"],
	"With a loose umask, new files are readable by every user.",
	"Set `umask 027` in /etc/profile.d/50-umask.sh and UMASK 027 in /etc/login.defs; remove weaker umask lines.",
	["AC-3"], ["3.3"],
) if id := "default-umask"

result[id] := verdict(ok, {"umask": umasks, "login_defs": defs, "weak": weak}) if {
	id := "default-umask"
	umasks := [sprintf("%s: %s", [s.file, s.value]) | some s in shell_settings; s.name == "umask"]
	defs := object.get(login_defs, "UMASK", "")
	strong := [s | some s in shell_settings; s.name == "umask"; strong_umask(s.value)]
	weak := [sprintf("%s: %s", [s.file, s.value]) | some s in shell_settings; s.name == "umask"; not strong_umask(s.value)]
	ok := all_true([any_true([count(strong) > 0, strong_umask_bool(defs)]), count(weak) == 0])
}

strong_umask_bool(s) := true if strong_umask(s)

strong_umask_bool(s) := false if not strong_umask(s)
