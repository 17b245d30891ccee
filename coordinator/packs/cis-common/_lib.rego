# The CIS library: checks common to the cis-* packs, written once. Each check is an entry of
# `checks` (what it is: CIS title, severity, the facts it reads, rationale, remediation, NIST SP
# 800-53 rev. 5 controls and CIS Controls v8 safeguards, and an agent action where one is safe)
# and of `result` (its verdict on the host). A distribution's pack maps its CIS recommendation
# numbers to these ids; recommendation numbers differ between benchmarks, the checks do not.
#
# Titles, numbers and control mappings follow the CIS Debian Linux 12 Benchmark v1.1.0, the CIS
# Ubuntu Linux 24.04 LTS Benchmark v1.0.0 and the CIS Red Hat Enterprise Linux 9 Benchmark
# v1.0.0 (Level 1 - Server, automated recommendations).
package rampart.lib.cis

import rego.v1

# Helpers are single-clause functions where they can be: regorus evaluates every clause of a
# function on each call (about 4 µs each), and a pack calls these thousands of times per host.
status_of := {true: "pass", false: "fail"}

verdict(ok, evidence) := {"status": status_of[ok], "evidence": evidence}

not_applicable(reason) := {"status": "not_applicable", "evidence": {"reason": reason}}

# A check's description. `facts` names the facts the verdict reads (as paths into the report).
chk(title, severity, facts, rationale, remediation, nist, controls) := {
	"title": title,
	"severity": severity,
	"facts": facts,
	"rationale": rationale,
	"remediation": remediation,
	"nist": nist,
	"controls": controls,
}

# The metadata a pack gives a check: its description, with the pack's recommendation number.
meta_for(id, number) := m if {
	c := checks[id]
	m := object.union(object.remove(c, ["nist", "controls"]), {"references": {
		"cis": [number],
		"nist": c.nist,
		"cis_controls": c.controls,
	}})
}

# The same, under the benchmark's own wording of the title where it differs from the library's.
meta_titled(id, number, title) := object.union(meta_for(id, number), {"title": title})

# ---- the host ----
rpm_ids := {"rhel", "rocky", "almalinux", "centos", "ol", "fedora"}

family := "rpm" if input.os.id in rpm_ids

family := "deb" if not input.os.id in rpm_ids

# Per-family values: `by_family({"deb": x, "rpm": y})`.
by_family(values) := values[family]

# ---- booleans over lists of booleans (defined, true or false, for every list) ----
# Membership tests, not comprehensions: a third of the instructions in regorus's compiled form.
all_true(xs) := (false in xs) == false

any_true(xs) := true in xs

# ---- packages and units ----
# Packages and units come through the coordinator's indexes of `input.packages` and
# `input.units` (built once per host in Rust): walking a list in Rego costs thousands of VM
# instructions per entry.
package_versions := object.get(input, "package_versions", {})

installed := object.keys(package_versions)

installed_of(names) := sort([n | some n in names; n in installed])

units_by_name := object.get(input, "units_by_name", {})

# Unit states as booleans (true or false, never undefined, so they can sit in lists).
unit_field(name, field) := object.get(object.get(units_by_name, name, {}), field, "")

unit_enabled(name) := unit_field(name, "enabled") == "enabled"

unit_active(name) := unit_field(name, "active") == "active"

# Whether a unit is enabled or active (false for a unit the host does not have). Looked up by
# name: walking every unit of the host in Rego costs more than the few lookups checks make.
unit_in_use(name) := true in [u.enabled == "enabled", u.active == "active"] if u := object.get(units_by_name, name, {"enabled": "", "active": ""})

units_in_use(names) := sort([n | some n in names; u := units_by_name[n]; true in [u.enabled == "enabled", u.active == "active"]])

unit_state(name) := {
	"unit": name,
	"enabled": object.get(object.get(units_by_name, name, {}), "enabled", "absent"),
	"active": object.get(object.get(units_by_name, name, {}), "active", "absent"),
}

# Enabled and, where the facts know it, active ("unknown" when read from unit files alone).
unit_running(name) := all_true([
	unit_field(name, "enabled") in {"enabled", "static"},
	unit_field(name, "active") in {"active", "unknown"},
])

# ---- files ----
files_by_path := {f.path: f | some f in input.files}

# Octal with a leading 0, e.g. "0640" (regorus prints %o as "0O640").
mode_string(m) := replace(upper(sprintf("%o", [m])), "0O", "0")

# Whether no permission bit outside `allowed` is set (a boolean, never undefined).
mode_within(m, allowed) := bits.and(m, bits.negate(allowed)) == 0

file_state(f) := {"path": f.path, "mode": mode_string(f.mode), "owner": f.owner, "group": f.group}

# ---- numbers in configuration values ----
# (to_number fails on anything else, and a failed builtin leaves the rule undefined; no regex,
# which costs far more per call in regorus.)
num(v) := n if {
	is_string(v)
	n := to_number(trim_space(v))
}

num(v) := v if is_number(v)

# Whether a value (a number, or a string holding one) is from `lo` to `hi`; false for a missing
# or non-numeric value. (Parameters must not be named min or max: those are built-in functions.)
# to_number reads a string as JSON, surrounding spaces included.
in_range(v, lo, hi) := count([n | n := to_number(v); n >= lo; n <= hi]) > 0

sysctl(key) := object.get(object.get(input, "sysctl", {}), key, "")

# ---- chrony (here, not in services.rego: regorus 0.14 failed the whole `result` with "not an
# object" when a result rule read these from a later file) ----
# Users chronyd runs as, and whether they (and the configured one) are the distribution's own.
chrony_users := sort([p.user | some p in input.processes; p.name == "chronyd"])

chrony_user_ok := all_true([
	count([u | some u in chrony_users; u != expected]) == 0,
	input.time_sync.chrony_user in {"", expected},
]) if expected := by_family({"deb": "_chrony", "rpm": "chrony"})
