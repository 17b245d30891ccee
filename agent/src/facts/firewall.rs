//! Firewall state. nftables: on the real host the loaded ruleset (`nft list ruleset`), otherwise
//! the ruleset the host loads at boot (`/etc/nftables.conf` or `/etc/sysconfig/nftables.conf`,
//! includes followed), parsed into tables and chains with their hook, policy and rules. ufw: its
//! enabled flag, default policies and rules on disk. firewalld: its main configuration.

use rampart_proto::v1::{FirewallFacts, NftChain};

use super::{CollectResult, FactSource, conf, run_command};

const NFT_CONF: [&str; 2] = ["/etc/nftables.conf", "/etc/sysconfig/nftables.conf"];
const MAX_FILES: usize = 64;

#[derive(Default)]
struct Parser {
    tables: Vec<String>,
    chains: Vec<NftChain>,
    files: usize,
}

/// Splits on `;` outside braces.
fn statements(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in line.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Applies the statements of one line of a chain: its base-chain spec, policy, or rules.
fn chain_statements(chain: &mut NftChain, line: &str) {
    for stmt in statements(line) {
        let w: Vec<&str> = stmt.split_whitespace().collect();
        match w.as_slice() {
            ["type", kind, "hook", hook, "priority", prio, ..] => {
                chain.r#type = kind.to_string();
                chain.hook = hook.to_string();
                chain.priority = prio.to_string();
            }
            ["policy", policy] => chain.policy = policy.to_string(),
            _ => chain.rules.push(stmt),
        }
    }
}

impl Parser {
    fn text(&mut self, src: Option<&FactSource>, text: &str) {
        // Context stack: "table <family> <name>", "chain", or "other" (sets, maps, ...).
        let mut stack: Vec<&'static str> = Vec::new();
        let mut table = (String::new(), String::new());
        for line in conf::lines(text) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let opens = line.ends_with('{');
            match (stack.last().copied(), words.as_slice()) {
                (_, ["}"] | ["};"]) => {
                    stack.pop();
                }
                (None, ["include", path, ..]) => {
                    if let Some(src) = src {
                        for f in conf::glob(src, path.trim_matches('"')) {
                            if self.files < MAX_FILES {
                                self.files += 1;
                                if let Ok(t) = src.read(&f) {
                                    self.text(Some(src), &t);
                                }
                            }
                        }
                    }
                }
                (None, ["table", rest @ ..]) if opens => {
                    let names: Vec<&str> = rest.iter().copied().filter(|w| *w != "{").collect();
                    table = match names.as_slice() {
                        [name] => ("ip".to_string(), name.to_string()),
                        [family, name, ..] => (family.to_string(), name.to_string()),
                        [] => (String::new(), String::new()),
                    };
                    self.tables.push(format!("{} {}", table.0, table.1));
                    stack.push("table");
                }
                (Some("table"), ["chain", name, ..]) if line.contains('{') => {
                    let mut chain = NftChain {
                        family: table.0.clone(),
                        table: table.1.clone(),
                        name: name.to_string(),
                        ..Default::default()
                    };
                    // `chain output { type filter hook output priority 0; policy accept; }`
                    let inner = line.split_once('{').map_or("", |(_, rest)| rest).trim();
                    let closed = inner.ends_with('}');
                    chain_statements(&mut chain, inner.trim_end_matches('}'));
                    self.chains.push(chain);
                    if !closed {
                        stack.push("chain");
                    }
                }
                (Some("chain"), _) => {
                    let chain = self.chains.last_mut().expect("a chain is open");
                    chain_statements(chain, line);
                    // A rule with a multi-line set would open a block; keep the nesting right.
                    if opens && line.matches('{').count() > line.matches('}').count() {
                        stack.push("other");
                    }
                }
                (_, _) if opens => stack.push("other"),
                _ => {}
            }
        }
    }
}

pub fn collect(src: &FactSource) -> CollectResult<FirewallFacts> {
    let mut facts = FirewallFacts::default();
    let mut parser = Parser::default();
    let loaded = src
        .commands_allowed()
        .then(|| run_command(&["/usr/sbin/nft", "/sbin/nft"], &["list", "ruleset"]))
        .flatten();
    if let Some(ruleset) = loaded {
        parser.text(None, &ruleset);
        facts.nft_source = "nft list ruleset".into();
    } else if let Some(path) = NFT_CONF
        .into_iter()
        .find(|p| matches!(src.read_optional(p), Ok(Some(_))))
    {
        let text = src.read(path).map_err(|e| format!("{path}: {e}"))?;
        parser.text(Some(src), &text);
        facts.nft_source = "config files".into();
    }
    facts.nft_tables = parser.tables;
    facts.nft_chains = parser.chains;
    let mut ufw = std::collections::HashMap::new();
    conf::settings_of(src, "/etc/ufw/ufw.conf", &mut ufw);
    facts.ufw_enabled = ufw
        .get("ENABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    conf::settings_of(src, "/etc/default/ufw", &mut facts.ufw_defaults);
    for f in ["/etc/ufw/user.rules", "/etc/ufw/user6.rules"] {
        if let Ok(Some(t)) = src.read_optional(f) {
            facts.ufw_rules.extend(
                t.lines()
                    .filter_map(|l| l.strip_prefix("### tuple ###"))
                    .map(|l| l.trim().to_string()),
            );
        }
    }
    conf::settings_of(src, "/etc/firewalld/firewalld.conf", &mut facts.firewalld);
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn nftables_config_tables_chains_and_rules() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/nftables.conf",
            "#!/usr/sbin/nft -f\nflush ruleset\ntable inet filter {\n  set admins {\n    type ipv4_addr\n    elements = { 198.18.0.1 }\n  }\n  chain input {\n    type filter hook input priority 0; policy drop;\n    iif \"lo\" accept\n    ct state established,related accept\n    tcp dport { 22, 443 } accept\n  }\n  chain forward {\n    type filter hook forward priority filter; policy drop;\n  }\n  chain helper {\n    counter\n  }\n}\ninclude \"/etc/nftables.d/*.nft\"\n",
        );
        write(
            r,
            "etc/nftables.d/out.nft",
            "table ip6 extra {\n  chain output { type filter hook output priority 0; policy accept; }\n}\n",
        );
        write(r, "etc/ufw/ufw.conf", "ENABLED=no\n");
        write(r, "etc/default/ufw", "DEFAULT_INPUT_POLICY=\"DROP\"\n");
        let f = collect(&FactSource::fixture(r)).unwrap();
        assert_eq!(f.nft_source, "config files");
        assert_eq!(f.nft_tables, ["inet filter", "ip6 extra"]);
        let input = &f.nft_chains[0];
        assert_eq!(
            (
                input.name.as_str(),
                input.hook.as_str(),
                input.policy.as_str(),
                input.priority.as_str()
            ),
            ("input", "input", "drop", "0")
        );
        assert_eq!(
            input.rules,
            [
                "iif \"lo\" accept",
                "ct state established,related accept",
                "tcp dport { 22, 443 } accept"
            ]
        );
        assert_eq!(f.nft_chains[1].priority, "filter");
        assert_eq!(f.nft_chains[2].hook, "");
        assert_eq!(f.nft_chains[2].rules, ["counter"]);
        // A one-line chain in an included file.
        assert_eq!(f.nft_chains[3].family, "ip6");
        assert_eq!(f.nft_chains[3].policy, "accept");
        assert!(!f.ufw_enabled);
        assert_eq!(f.ufw_defaults["DEFAULT_INPUT_POLICY"], "DROP");
    }
}
