# Services a server should not run, clients it should not have, time synchronisation and cron.
package rampart.lib.cis

import rego.v1

# ---- server services: not installed, or installed but neither enabled nor running ----
server_services := {
	"autofs": {"what": "autofs", "deb": {"packages": ["autofs"], "units": ["autofs.service"]}, "rpm": {"packages": ["autofs"], "units": ["autofs.service"]}, "controls": ["10.3"]},
	"avahi": {"what": "avahi daemon", "deb": {"packages": ["avahi-daemon"], "units": ["avahi-daemon.service", "avahi-daemon.socket"]}, "rpm": {"packages": ["avahi"], "units": ["avahi-daemon.service", "avahi-daemon.socket"]}, "controls": ["4.8"]},
	"dhcp-server": {"what": "dhcp server", "deb": {"packages": ["isc-dhcp-server", "kea"], "units": ["isc-dhcp-server.service", "isc-dhcp-server6.service", "kea-dhcp4-server.service", "kea-dhcp6-server.service"]}, "rpm": {"packages": ["dhcp-server", "kea"], "units": ["dhcpd.service", "dhcpd6.service", "kea-dhcp4.service", "kea-dhcp6.service"]}, "controls": ["4.8"]},
	"dns-server": {"what": "dns server", "deb": {"packages": ["bind9"], "units": ["named.service", "bind9.service"]}, "rpm": {"packages": ["bind"], "units": ["named.service"]}, "controls": ["4.8"]},
	"dnsmasq": {"what": "dnsmasq", "deb": {"packages": ["dnsmasq"], "units": ["dnsmasq.service"]}, "rpm": {"packages": ["dnsmasq"], "units": ["dnsmasq.service"]}, "controls": ["4.8"]},
	"ftp-server": {"what": "ftp server", "deb": {"packages": ["vsftpd", "proftpd-basic", "pure-ftpd"], "units": ["vsftpd.service", "proftpd.service", "pure-ftpd.service"]}, "rpm": {"packages": ["vsftpd"], "units": ["vsftpd.service"]}, "controls": ["4.8"]},
	"ldap-server": {"what": "ldap server", "deb": {"packages": ["slapd"], "units": ["slapd.service"]}, "rpm": {"packages": ["openldap-servers"], "units": ["slapd.service"]}, "controls": ["4.8"]},
	"message-access": {"what": "message access server", "deb": {"packages": ["dovecot-imapd", "dovecot-pop3d", "cyrus-imapd"], "units": ["dovecot.service", "dovecot.socket", "cyrus-imapd.service"]}, "rpm": {"packages": ["dovecot", "cyrus-imapd"], "units": ["dovecot.service", "dovecot.socket", "cyrus-imapd.service"]}, "controls": ["4.8"]},
	"nfs-server": {"what": "network file system", "deb": {"packages": ["nfs-kernel-server"], "units": ["nfs-server.service"]}, "rpm": {"packages": ["nfs-utils"], "units": ["nfs-server.service"]}, "controls": ["4.8"]},
	"nis-server": {"what": "nis server", "deb": {"packages": ["ypserv"], "units": ["ypserv.service"]}, "rpm": {"packages": ["ypserv"], "units": ["ypserv.service"]}, "controls": ["4.8"]},
	"print-server": {"what": "print server", "deb": {"packages": ["cups"], "units": ["cups.service", "cups.socket"]}, "rpm": {"packages": ["cups"], "units": ["cups.service", "cups.socket"]}, "controls": ["4.8"]},
	"rpcbind": {"what": "rpcbind", "deb": {"packages": ["rpcbind"], "units": ["rpcbind.service", "rpcbind.socket"]}, "rpm": {"packages": ["rpcbind"], "units": ["rpcbind.service", "rpcbind.socket"]}, "controls": ["4.8"]},
	"rsync": {"what": "rsync", "deb": {"packages": ["rsync"], "units": ["rsync.service"]}, "rpm": {"packages": ["rsync-daemon"], "units": ["rsyncd.service", "rsyncd.socket"]}, "controls": ["4.8"]},
	"samba": {"what": "samba file server", "deb": {"packages": ["samba"], "units": ["smbd.service"]}, "rpm": {"packages": ["samba"], "units": ["smb.service"]}, "controls": ["4.8"]},
	"snmp": {"what": "snmp", "deb": {"packages": ["snmpd"], "units": ["snmpd.service"]}, "rpm": {"packages": ["net-snmp"], "units": ["snmpd.service"]}, "controls": ["4.8"]},
	"tftp-server": {"what": "tftp server", "deb": {"packages": ["tftpd-hpa"], "units": ["tftpd-hpa.service"]}, "rpm": {"packages": ["tftp-server"], "units": ["tftp.service", "tftp.socket"]}, "controls": ["4.8"]},
	"web-proxy": {"what": "web proxy server", "deb": {"packages": ["squid"], "units": ["squid.service"]}, "rpm": {"packages": ["squid"], "units": ["squid.service"]}, "controls": ["4.8"]},
	"web-server": {"what": "web server", "deb": {"packages": ["apache2", "nginx"], "units": ["apache2.service", "apache2.socket", "nginx.service"]}, "rpm": {"packages": ["httpd", "nginx"], "units": ["httpd.service", "httpd.socket", "nginx.service"]}, "controls": ["4.8"]},
	"xinetd": {"what": "xinetd", "deb": {"packages": ["xinetd"], "units": ["xinetd.service"]}, "rpm": {"packages": ["xinetd"], "units": ["xinetd.service"]}, "controls": ["4.8"]},
	"x-server": {"what": "X window server", "deb": {"packages": ["xserver-common"], "units": []}, "rpm": {"packages": ["xorg-x11-server-common"], "units": []}, "controls": ["4.8"]},
	"bluetooth": {"what": "bluetooth", "deb": {"packages": ["bluez"], "units": ["bluetooth.service"]}, "rpm": {"packages": ["bluez"], "units": ["bluetooth.service"]}, "controls": ["4.8"]},
}

checks[id] := chk(
	sprintf("Ensure %s services are not in use", [s.what]),
	"medium",
	["packages", "units"],
	sprintf("A %s the host does not need is attack surface; unused services are where unpatched vulnerabilities wait.", [s.what]),
	sprintf("Remove the packages (Debian/Ubuntu: %s; RHEL: %s), or if another package needs them, stop and mask the units (%s).", [concat(" ", s.deb.packages), concat(" ", s.rpm.packages), concat(" ", array.concat(s.deb.units, [u | some u in s.rpm.units; not u in s.deb.units]))]),
	["CM-7"], s.controls,
) if {
	some slug, s in server_services
	id := sprintf("service-%s", [slug])
}

result[id] := verdict(ok, {"installed": found, "in_use": in_use}) if {
	some slug, s in server_services
	id := sprintf("service-%s", [slug])
	names := by_family(s)
	found := installed_of(names.packages)
	in_use := units_in_use(names.units)
	# Installed but neither enabled nor running passes (a dependency may need the package); with
	# no unit to run, being installed is the finding.
	ok := any_true([count(found) == 0, all_true([count(names.units) > 0, count(in_use) == 0])])
}

# ---- clients with clear-text or legacy protocols ----
clients := {
	"nis": {"what": "NIS Client", "deb": ["nis"], "rpm": ["ypbind"]},
	"rsh": {"what": "rsh client", "deb": ["rsh-client", "rsh-redone-client"], "rpm": ["rsh"]},
	"talk": {"what": "talk client", "deb": ["talk"], "rpm": ["talk"]},
	"telnet": {"what": "telnet client", "deb": ["telnet", "inetutils-telnet"], "rpm": ["telnet"]},
	"ldap": {"what": "ldap client", "deb": ["ldap-utils"], "rpm": ["openldap-clients"]},
	"ftp": {"what": "ftp client", "deb": ["ftp", "tnftp"], "rpm": ["ftp"]},
	"tftp": {"what": "tftp client", "deb": ["tftp-hpa"], "rpm": ["tftp"]},
}

checks[id] := chk(
	sprintf("Ensure %s is not installed", [c.what]),
	"low",
	["packages"],
	"Legacy clients send credentials and data in clear text; their presence invites their use.",
	sprintf("apt purge %s (dnf remove %s)", [concat(" ", c.deb), concat(" ", c.rpm)]),
	["CM-7"], ["4.8"],
) if {
	some slug, c in clients
	id := sprintf("client-%s", [slug])
}

result[id] := verdict(count(found) == 0, {"installed": found}) if {
	some slug, c in clients
	id := sprintf("client-%s", [slug])
	found := installed_of(by_family(c))
}

# ---- mail transfer agent ----
checks[id] := chk(
	"Ensure mail transfer agent is configured for local-only mode", "medium", ["sockets"],
	"An MTA listening on the network relays or receives mail for anyone who reaches it.",
	"Make the MTA listen on loopback only (postfix: inet_interfaces = loopback-only) and restart it.",
	["CM-7"], ["4.8"],
) if id := "mta-local-only"

result[id] := verdict(count(exposed) == 0, {"listening": exposed}) if {
	id := "mta-local-only"
	exposed := sort([sprintf("%s:%d (%s)", [s.address, s.port, s.process]) |
		some s in input.sockets
		s.port in {25, 465, 587}
		not s.address in {"127.0.0.1", "::1"}
		not startswith(s.address, "127.")
	])
}

# ---- time synchronisation ----
# chrony when installed, else systemd-timesyncd: the daemon whose checks apply.
time_daemon := "chrony" if "chrony" in installed

time_daemon := "systemd-timesyncd" if {
	not "chrony" in installed
	any_true([("systemd-timesyncd" in installed), unit_enabled("systemd-timesyncd.service")])
}

time_daemon := "none" if {
	not "chrony" in installed
	not "systemd-timesyncd" in installed
	not unit_enabled("systemd-timesyncd.service")
}

checks[id] := chk(
	"Ensure a single time synchronization daemon is in use", "medium", ["packages", "units"],
	"Logs, certificates and authentication need an accurate clock; two daemons fight over it.",
	"Install and enable one of chrony or systemd-timesyncd, and stop and mask the other.",
	["AU-8"], ["8.4"],
) if id := "time-sync-single-daemon"

result[id] := verdict(count(running) == 1, {"in_use": running}) if {
	id := "time-sync-single-daemon"
	running := units_in_use(["chrony.service", "chronyd.service", "systemd-timesyncd.service", "ntp.service", "ntpsec.service"])
}

checks[id] := chk(
	"Ensure systemd-timesyncd configured with authorized timeserver", "low", ["time_sync.timesyncd"],
	"Time from an unknown server can be wrong, or wrong on purpose.",
	"Set NTP= (and FallbackNTP=) to the site's time servers in /etc/systemd/timesyncd.conf.d/60-timesyncd.conf.",
	["AU-8"], ["8.4"],
) if id := "timesyncd-timeserver"

result[id] := not_applicable(sprintf("the time daemon is %s", [time_daemon])) if { id := "timesyncd-timeserver"; time_daemon != "systemd-timesyncd" }

result[id] := verdict(servers != "", {"NTP": servers}) if {
	id := "timesyncd-timeserver"
	time_daemon == "systemd-timesyncd"
	servers := trim_space(object.get(input.time_sync.timesyncd, "NTP", ""))
}

checks[id] := chk(
	"Ensure systemd-timesyncd is enabled and running", "medium", ["units"],
	"A configured daemon that does not run does not keep time.",
	"systemctl unmask systemd-timesyncd.service && systemctl --now enable systemd-timesyncd.service",
	["AU-8"], ["8.4"],
) if id := "timesyncd-running"

result[id] := not_applicable(sprintf("the time daemon is %s", [time_daemon])) if { id := "timesyncd-running"; time_daemon != "systemd-timesyncd" }

result[id] := verdict(unit_running("systemd-timesyncd.service"), unit_state("systemd-timesyncd.service")) if { id := "timesyncd-running"; time_daemon == "systemd-timesyncd" }

checks[id] := chk(
	"Ensure chrony is configured with authorized timeserver", "low", ["time_sync.chrony_sources"],
	"Time from an unknown server can be wrong, or wrong on purpose.",
	"Add `server` or `pool` lines naming the site's time servers to /etc/chrony/sources.d/ (RHEL: /etc/chrony.conf).",
	["AU-8"], ["8.4"],
) if id := "chrony-timeserver"

result[id] := not_applicable(sprintf("the time daemon is %s", [time_daemon])) if { id := "chrony-timeserver"; time_daemon != "chrony" }

result[id] := verdict(count(input.time_sync.chrony_sources) > 0, {"sources": input.time_sync.chrony_sources}) if { id := "chrony-timeserver"; time_daemon == "chrony" }

checks[id] := chk(
	"Ensure chrony is running as an unprivileged user", "medium", ["processes", "time_sync.chrony_user"],
	"chronyd talks to the network; as root a flaw in it is a root compromise.",
	"Remove any `user root` from chrony's configuration and `-u root` from its options; restart chronyd.",
	["AC-6"], ["4.1"],
) if id := "chrony-user"

result[id] := not_applicable(sprintf("the time daemon is %s", [time_daemon])) if { id := "chrony-user"; time_daemon != "chrony" }

result[id] := verdict(chrony_user_ok, {"processes": chrony_users, "configured_user": input.time_sync.chrony_user}) if {
	id := "chrony-user"
	time_daemon == "chrony"
}


checks[id] := chk(
	"Ensure chrony is enabled and running", "medium", ["units"],
	"A configured daemon that does not run does not keep time.",
	"systemctl unmask chrony.service && systemctl --now enable chrony.service",
	["AU-8"], ["8.4"],
) if id := "chrony-running"

result[id] := not_applicable(sprintf("the time daemon is %s", [time_daemon])) if { id := "chrony-running"; time_daemon != "chrony" }

result[id] := verdict(unit_running(unit), unit_state(unit)) if {
	id := "chrony-running"
	time_daemon == "chrony"
	unit := by_family({"deb": "chrony.service", "rpm": "chronyd.service"})
}

# ---- cron and at ----
cron_unit := by_family({"deb": "cron.service", "rpm": "crond.service"})

cron_installed if "cron" in installed

cron_installed if "cronie" in installed

checks[id] := chk(
	"Ensure cron daemon is enabled and active", "medium", ["packages", "units"],
	"Scheduled maintenance (log rotation, integrity checks) runs from cron.",
	"systemctl unmask cron.service && systemctl --now enable cron.service",
	["CM-6"], ["4.1"],
) if id := "cron-enabled"

result[id] := not_applicable("cron is not installed") if { id := "cron-enabled"; not cron_installed }

result[id] := verdict(unit_running(cron_unit), unit_state(cron_unit)) if { id := "cron-enabled"; cron_installed }

cron_paths := {
	"crontab": {"path": "/etc/crontab", "max": 384, "title": "Ensure permissions on /etc/crontab are configured"},
	"hourly": {"path": "/etc/cron.hourly", "max": 448, "title": "Ensure permissions on /etc/cron.hourly are configured"},
	"daily": {"path": "/etc/cron.daily", "max": 448, "title": "Ensure permissions on /etc/cron.daily are configured"},
	"weekly": {"path": "/etc/cron.weekly", "max": 448, "title": "Ensure permissions on /etc/cron.weekly are configured"},
	"monthly": {"path": "/etc/cron.monthly", "max": 448, "title": "Ensure permissions on /etc/cron.monthly are configured"},
	"d": {"path": "/etc/cron.d", "max": 448, "title": "Ensure permissions on /etc/cron.d are configured"},
}

checks[id] := object.union(chk(
	c.title, "medium", [sprintf("files[%s]", [c.path])],
	"Whoever can write cron files runs commands as root; whoever can read them learns what runs.",
	sprintf("chown root:root %s && chmod %s %s", [c.path, mode_string(c.max), c.path]),
	["AC-3", "AC-6"], ["3.3"],
), {"action": {"kind": "file_mode", "path": c.path, "mode": mode_string(c.max), "owner": "root", "group": "root", "allowed_groups": ["root"]}}) if {
	some slug, c in cron_paths
	id := sprintf("cron-%s-permissions", [slug])
}

result[id] := file_result(c.path, c.max, {"root"}) if {
	some slug, c in cron_paths
	id := sprintf("cron-%s-permissions", [slug])
}

access_lists := {a.path: a | some a in input.cron_access}

# An allow/deny file is acceptable when it is owned by root, its group is root or `group`, and
# it is no looser than 0640.
access_ok(a, group) := all_true([a.owner == "root", a.group in {"root", group}, mode_within(a.mode, 416)])

access_state(a) := {"path": a.path, "exists": a.exists, "mode": mode_string(a.mode), "owner": a.owner, "group": a.group}

checks[id] := chk(
	"Ensure crontab is restricted to authorized users", "medium", ["cron_access"],
	"An allow list keeps users who need no scheduled jobs from running them.",
	"touch /etc/cron.allow && chown root:root /etc/cron.allow && chmod 640 /etc/cron.allow; same ownership and mode for /etc/cron.deny if it exists.",
	["AC-3"], ["3.3"],
) if id := "cron-restricted"

result[id] := not_applicable("cron is not installed") if { id := "cron-restricted"; not cron_installed }

result[id] := verdict(ok, {"allow": access_state(allow), "deny": access_state(deny)}) if {
	id := "cron-restricted"
	cron_installed
	allow := access_lists["/etc/cron.allow"]
	deny := access_lists["/etc/cron.deny"]
	group := by_family({"deb": "crontab", "rpm": "root"})
	ok := all_true([allow.exists, access_ok(allow, group), any_true([deny.exists == false, access_ok(deny, group)])])
}

checks[id] := chk(
	"Ensure at is restricted to authorized users", "medium", ["packages", "cron_access"],
	"An allow list keeps users who need no deferred jobs from running them.",
	"touch /etc/at.allow && chown root:root /etc/at.allow && chmod 640 /etc/at.allow; same for /etc/at.deny if it exists.",
	["AC-3"], ["3.3"],
) if id := "at-restricted"

result[id] := not_applicable("at is not installed") if { id := "at-restricted"; not "at" in installed }

result[id] := verdict(ok, {"allow": access_state(allow), "deny": access_state(deny)}) if {
	id := "at-restricted"
	"at" in installed
	allow := access_lists["/etc/at.allow"]
	deny := access_lists["/etc/at.deny"]
	group := by_family({"deb": "daemon", "rpm": "root"})
	ok := all_true([allow.exists, access_ok(allow, group), any_true([deny.exists == false, access_ok(deny, group)])])
}
