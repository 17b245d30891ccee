//! Network faults in Rampart's own nftables table, `inet rampart`: partition (drop), loss
//! (`numgen random` drop), DNS (drop port 53), and the redirect of the userspace latency path.
//! Each fault owns its chains, named after its id; every rule carries the comment
//! `rampart:<fault id>`. The agent's session with its coordinator and the loopback interface are
//! always excluded. Reverting deletes the fault's chains (and the table once it is empty) and
//! checks they are gone.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use rampart_proto::v1::{Direction, NetworkMatch};

use super::command;

pub const TABLE: &str = "rampart";
/// Packets the agent's own latency proxy sends carry this mark, so the redirect skips them.
pub const MARK: u32 = 0x5241;

/// nft changes are serialised: table creation and deletion must not race.
static NFT: Mutex<()> = Mutex::new(());

pub fn nft(script: &str) -> Result<String, String> {
    let _guard = NFT.lock().unwrap_or_else(|p| p.into_inner());
    command("nft", &["-f", "-"], Some(script))
}

fn list_chain(chain: &str) -> bool {
    command("nft", &["list", "chain", "inet", TABLE, chain], None).is_ok()
}

/// Chain names of a fault (nft names: letters, digits, `_`).
pub fn chain(prefix: &str, fault_id: &str) -> String {
    let id: String = fault_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{id}")
}

/// What to do with matching packets.
#[derive(Debug, Clone, Copy)]
pub enum Verdict {
    Drop,
    /// Drop this percentage at random.
    Loss(u32),
}

fn set(items: &[String]) -> String {
    format!("{{ {} }}", items.join(", "))
}

/// Rules that let the coordinator session and loopback through, first in each chain.
fn exclusions(
    fault_id: &str,
    in_chain: &str,
    out_chain: &str,
    coordinator: &[SocketAddr],
) -> String {
    let mut s = format!(
        "add rule inet {TABLE} {in_chain} iifname \"lo\" accept comment \"rampart:{fault_id} loopback\"\n\
         add rule inet {TABLE} {out_chain} oifname \"lo\" accept comment \"rampart:{fault_id} loopback\"\n"
    );
    for a in coordinator {
        let fam = if a.is_ipv4() { "ip" } else { "ip6" };
        s.push_str(&format!(
            "add rule inet {TABLE} {out_chain} {fam} daddr {} tcp dport {} accept comment \"rampart:{fault_id} coordinator\"\n\
             add rule inet {TABLE} {in_chain} {fam} saddr {} tcp sport {} accept comment \"rampart:{fault_id} coordinator\"\n",
            a.ip(), a.port(), a.ip(), a.port()
        ));
    }
    s
}

/// Parses the match's CIDRs into (IPv4, IPv6) lists.
fn cidrs(m: &NetworkMatch) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for c in &m.cidrs {
        let (addr, len) = c.split_once('/').unwrap_or((c, ""));
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{c:?} is not an address or CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if !len.is_empty() && len.parse::<u8>().map_or(true, |l| l > max) {
            return Err(format!("{c:?} has an invalid prefix length"));
        }
        if ip.is_ipv4() {
            v4.push(c.clone())
        } else {
            v6.push(c.clone())
        }
    }
    Ok((v4, v6))
}

/// Builds the nft script of a drop/loss fault. Ports match either end of TCP and UDP.
pub fn script(
    fault_id: &str,
    m: &NetworkMatch,
    verdict: Verdict,
    coordinator: &[SocketAddr],
) -> Result<(String, Vec<String>, String), String> {
    if m.ports.iter().any(|p| *p == 0 || *p > 65535) {
        return Err("ports must be between 1 and 65535".into());
    }
    let (v4, v6) = cidrs(m)?;
    let in_chain = chain("in", fault_id);
    let out_chain = chain("out", fault_id);
    let mut s = format!(
        "add table inet {TABLE}\n\
         add chain inet {TABLE} {in_chain} {{ type filter hook input priority -10; policy accept; }}\n\
         add chain inet {TABLE} {out_chain} {{ type filter hook output priority -10; policy accept; }}\n"
    );
    s.push_str(&exclusions(fault_id, &in_chain, &out_chain, coordinator));
    let action = match verdict {
        Verdict::Drop => "drop".to_string(),
        Verdict::Loss(p) => format!("numgen random mod 100 < {p} drop"),
    };
    let ports: Vec<String> = m.ports.iter().map(u32::to_string).collect();
    let port_matches: Vec<String> = if ports.is_empty() {
        vec![String::new()]
    } else {
        vec![
            format!("meta l4proto {{ tcp, udp }} th dport {} ", set(&ports)),
            format!("meta l4proto {{ tcp, udp }} th sport {} ", set(&ports)),
        ]
    };
    let addr_matches = |dir: &str| -> Vec<String> {
        if v4.is_empty() && v6.is_empty() {
            return vec![String::new()];
        }
        let mut out = Vec::new();
        if !v4.is_empty() {
            out.push(format!("ip {dir} {} ", set(&v4)));
        }
        if !v6.is_empty() {
            out.push(format!("ip6 {dir} {} ", set(&v6)));
        }
        out
    };
    let directions: &[(&str, &str)] =
        match Direction::try_from(m.direction).unwrap_or(Direction::Both) {
            Direction::In => &[("in", "saddr")],
            Direction::Out => &[("out", "daddr")],
            Direction::Both => &[("in", "saddr"), ("out", "daddr")],
        };
    let mut rules = 0;
    for (dir, addr_field) in directions {
        let chain = if *dir == "in" { &in_chain } else { &out_chain };
        for a in addr_matches(addr_field) {
            for p in &port_matches {
                s.push_str(&format!(
                    "add rule inet {TABLE} {chain} {a}{p}{action} comment \"rampart:{fault_id}\"\n"
                ));
                rules += 1;
            }
        }
    }
    let what = match verdict {
        Verdict::Drop => "drop".to_string(),
        Verdict::Loss(p) => format!("drop {p}% at random"),
    };
    let detail = format!(
        "nftables table inet {TABLE}, chains {in_chain}/{out_chain}: {what} of {} traffic{}{} ({rules} rule(s)); loopback and the coordinator session excluded",
        match Direction::try_from(m.direction).unwrap_or(Direction::Both) {
            Direction::In => "incoming",
            Direction::Out => "outgoing",
            Direction::Both => "incoming and outgoing",
        },
        if m.cidrs.is_empty() {
            String::new()
        } else {
            format!(" with {}", m.cidrs.join(", "))
        },
        if ports.is_empty() {
            String::new()
        } else {
            format!(" on port(s) {}", ports.join(", "))
        },
    );
    Ok((s, vec![in_chain, out_chain], detail))
}

/// Applies a script that creates `chains`, and checks they exist.
pub fn apply(script: &str, chains: &[String]) -> Result<(), String> {
    nft(script)?;
    for c in chains {
        if !list_chain(c) {
            return Err(format!(
                "chain {c} is not in table inet {TABLE} after applying"
            ));
        }
    }
    Ok(())
}

/// Deletes the chains (tolerating ones already gone), then the table when it holds no chain;
/// checks what it deleted is gone.
pub fn remove_chains(chains: &[String]) -> Result<String, String> {
    let mut problems = Vec::new();
    for c in chains {
        if list_chain(c)
            && let Err(e) = nft(&format!("delete chain inet {TABLE} {c}\n"))
        {
            // A chain still referenced or holding rules: flush, then delete.
            let retry = nft(&format!(
                "flush chain inet {TABLE} {c}\ndelete chain inet {TABLE} {c}\n"
            ));
            if retry.is_err() {
                problems.push(format!("cannot delete chain {c}: {e}"));
            }
        }
        if list_chain(c) {
            problems.push(format!("chain {c} is still in table inet {TABLE}"));
        }
    }
    remove_table_if_empty();
    if problems.is_empty() {
        Ok(format!(
            "deleted chains {} of table inet {TABLE}",
            chains.join(", ")
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// Deletes `inet rampart` if it has no chain left.
fn remove_table_if_empty() {
    let Ok(json) = command("nft", &["-j", "list", "table", "inet", TABLE], None) else {
        return;
    };
    let chains = serde_json::from_str::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| {
            v["nftables"]
                .as_array()
                .map(|a| a.iter().filter(|o| o.get("chain").is_some()).count())
        })
        .unwrap_or(1);
    if chains == 0 {
        let _ = nft(&format!("delete table inet {TABLE}\n"));
    }
}

/// Deletes the whole table, whatever it holds (for `recover --all`).
pub fn remove_table() -> Result<String, String> {
    if command("nft", &["list", "table", "inet", TABLE], None).is_err() {
        return Ok(format!("no table inet {TABLE}"));
    }
    nft(&format!("delete table inet {TABLE}\n"))?;
    if command("nft", &["list", "table", "inet", TABLE], None).is_ok() {
        return Err(format!("table inet {TABLE} is still there"));
    }
    Ok(format!("deleted table inet {TABLE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_exclude_the_coordinator_and_match_both_port_ends() {
        let m = NetworkMatch {
            cidrs: vec!["198.18.0.0/24".into(), "2001:db8::/32".into()],
            ports: vec![8080],
            direction: Direction::Out as i32,
        };
        let coord = ["198.18.0.1:7443".parse().unwrap()];
        let (s, chains, detail) = script("flt-1", &m, Verdict::Loss(30), &coord).unwrap();
        assert_eq!(chains, ["in_flt_1", "out_flt_1"]);
        assert!(
            s.contains("add rule inet rampart out_flt_1 ip daddr 198.18.0.1 tcp dport 7443 accept"),
            "{s}"
        );
        assert!(s.contains("ip daddr { 198.18.0.0/24 } meta l4proto { tcp, udp } th dport { 8080 } numgen random mod 100 < 30 drop comment \"rampart:flt-1\""), "{s}");
        assert!(
            s.contains("ip6 daddr { 2001:db8::/32 } meta l4proto { tcp, udp } th sport { 8080 }"),
            "{s}"
        );
        assert!(
            !s.contains("add rule inet rampart in_flt_1 ip saddr { 198"),
            "direction out only: {s}"
        );
        assert!(
            detail.contains("drop 30% at random of outgoing traffic"),
            "{detail}"
        );
        for bad in ["10.0.0.0/33", "banana"] {
            let m = NetworkMatch {
                cidrs: vec![bad.into()],
                ..Default::default()
            };
            assert!(script("f", &m, Verdict::Drop, &[]).is_err(), "{bad}");
        }
    }
}
