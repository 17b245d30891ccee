# CIS Ubuntu Linux 24.04 LTS Benchmark v1.0.0: the recommendation number of each Level 1 -
# Server automated check: the numbering shared with Debian 12, plus what only Ubuntu has.
package rampart.pack.cis_ubuntu_24_04

import data.rampart.lib.cis
import rego.v1

recommendations := object.union(data.rampart.lib.cis.debian_ubuntu_numbers, {
	"prelink-not-installed": "1.5.4",
	"apport-disabled": "1.5.5",
})

meta[id] := cis.meta_for(id, number) if some id, number in recommendations

# The library's verdicts for this pack's checks. Library rules are named by their full path, not
# through the import: regorus evaluates an imported package as a whole (every rule of it) when a
# rule is read through its alias, which cost 4 ms per host here.
result := object.filter(data.rampart.lib.cis.result, object.keys(recommendations))
