# CIS Debian Linux 12 Benchmark v1.1.0: the recommendation number of each Level 1 - Server
# automated check (the numbering it shares with Ubuntu 24.04 is in the library). What each check
# is and how it decides lives in data.rampart.lib.cis.
package rampart.pack.cis_debian_12

import data.rampart.lib.cis
import rego.v1

recommendations := data.rampart.lib.cis.debian_ubuntu_numbers

meta[id] := cis.meta_for(id, number) if some id, number in recommendations

# The library's verdicts for this pack's checks. Library rules are named by their full path, not
# through the import: regorus evaluates an imported package as a whole (every rule of it) when a
# rule is read through its alias, which cost 4 ms per host here.
result := object.filter(data.rampart.lib.cis.result, object.keys(recommendations))
