# CIS Ubuntu Linux 24.04 LTS Benchmark v1.0.0: the recommendation number of each Level 1 -
# Server automated check: the numbering shared with Debian 12, plus what only Ubuntu has.
package rampart.pack.cis_ubuntu_24_04

import data.rampart.lib.cis
import rego.v1

recommendations := object.union(cis.debian_ubuntu_numbers, {
	"prelink-not-installed": "1.5.4",
	"apport-disabled": "1.5.5",
})

meta[id] := cis.meta_for(id, number) if some id, number in recommendations

result[id] := cis.result[id] if some id, _ in recommendations
