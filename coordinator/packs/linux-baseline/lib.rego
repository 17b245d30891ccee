# Helpers shared by the linux-baseline checks.
package rampart.pack.linux_baseline

import rego.v1

verdict(ok, evidence) := {"status": "pass", "evidence": evidence} if ok

verdict(ok, evidence) := {"status": "fail", "evidence": evidence} if not ok

not_applicable(reason) := {"status": "not_applicable", "evidence": {"reason": reason}}

# Metadata with the fields every check carries.
check(title, severity, rationale, remediation, cis, nist) := {
	"title": title,
	"severity": severity,
	"rationale": rationale,
	"remediation": remediation,
	"references": {"cis": cis, "nist": nist},
}

sshd_present if input.sshd.present

sshd_value(key) := object.get(input.sshd.settings, key, "")

files_by_path := {f.path: f | some f in input.files}

file(path) := files_by_path[path]

# Octal with a leading 0, e.g. "0640" (regorus prints %o as "0O640").
mode_string(m) := sprintf("0%s", [trim_prefix(upper(sprintf("%o", [m])), "0O")])

# Whether no permission bit outside `allowed` is set (a boolean, never undefined).
mode_within(m, allowed) := bits.and(m, bits.negate(allowed)) == 0

# Booleans over lists: defined (true or false) for every list.
all_true(xs) := true if {
	every x in xs {
		x == true
	}
}

all_true(xs) := false if {
	some x in xs
	x != true
}

any_true(xs) := true if {
	some x in xs
	x == true
}

any_true(xs) := false if {
	every x in xs {
		x != true
	}
}

# Names of the installed packages, built once per evaluation: checks look names up in it
# instead of scanning every package each time.
# The coordinator's index of input.packages (a lookup, not a walk over every package in Rego).
installed_packages := object.keys(object.get(input, "package_versions", {}))

package_installed(names) := [n | some n in names; n in installed_packages]

sysctl_value(key) := object.get(input.sysctl, key, "")

mount(point) := m if {
	some m in input.mounts
	m.mount_point == point
}
