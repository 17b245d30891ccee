//! Traffic shaping on an interface with Rampart's own qdisc handles: an `htb` root (handle
//! `5241:`) whose default class carries the fault (a rate limit, or a `netem` leaf for latency)
//! and whose other class lets the coordinator session through untouched. The interface's previous
//! root qdisc must be the kernel's default (handle `0:`), which deleting Rampart's root brings
//! back; anything else is refused unless forced. Reverting checks the previous kind is back.

use std::net::SocketAddr;

use super::command;
use super::journal::Undo;

pub const HANDLE: &str = "5241:";

/// The root qdisc of `dev`: (kind, handle).
pub fn root(dev: &str) -> Result<(String, String), String> {
    let out = command("tc", &["-j", "qdisc", "show", "dev", dev, "root"], None)?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("unreadable tc output for {dev}: {e}"))?;
    let q = v
        .as_array()
        .and_then(|a| a.iter().find(|q| q["root"] == true).or(a.first()))
        .ok_or_else(|| format!("interface {dev} has no root qdisc"))?;
    Ok((
        q["kind"].as_str().unwrap_or_default().to_string(),
        q["handle"].as_str().unwrap_or_default().to_string(),
    ))
}

fn check_interface(dev: &str) -> Result<(), String> {
    if dev.is_empty()
        || dev.len() > 15
        || !dev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(format!("{dev:?} is not an interface name"));
    }
    if !std::path::Path::new("/sys/class/net").join(dev).exists() {
        return Err(format!("no interface {dev} on this host"));
    }
    Ok(())
}

/// The fault's leaf: what the default class does.
pub enum Leaf {
    Rate(u64),
    Netem { delay_ms: u32, jitter_ms: u32 },
}

/// Installs Rampart's root on `dev`; returns how to undo it and what was applied.
pub fn apply(
    dev: &str,
    leaf: &Leaf,
    force: bool,
    coordinator: &[SocketAddr],
    journal: impl FnOnce(&Undo) -> Result<(), String>,
) -> Result<(Undo, String), String> {
    check_interface(dev)?;
    let (kind, handle) = root(dev)?;
    if handle == HANDLE {
        return Err(format!("interface {dev} already carries a Rampart fault"));
    }
    let default = handle == "0:" || handle.is_empty();
    if !default && !force {
        return Err(format!(
            "interface {dev} has a configured root qdisc ({kind} {handle}) that Rampart could not restore exactly; refused (force to replace it, and get the kernel default back on revert)"
        ));
    }
    let undo = Undo::Qdisc {
        interface: dev.to_string(),
        previous_kind: kind.clone(),
        forced: !default,
    };
    journal(&undo)?;
    let unlimited = "10gbit";
    let (rate, leaf_cmd, what) = match leaf {
        Leaf::Rate(bits) => {
            // A burst of 20 ms at the rate, at least two full-size frames.
            let burst = (bits / 8 / 50).max(3028);
            (
                format!("{bits}bit"),
                None,
                format!("rate limited to {bits} bit/s (htb, burst {burst} B)"),
            )
        }
        Leaf::Netem {
            delay_ms,
            jitter_ms,
        } => (
            unlimited.to_string(),
            Some(format!(
                "qdisc add dev {dev} parent 5241:2 handle 5242: netem delay {delay_ms}ms {jitter_ms}ms\n"
            )),
            format!("netem delay {delay_ms} ms ± {jitter_ms} ms"),
        ),
    };
    let mut batch = format!(
        "qdisc replace dev {dev} root handle {HANDLE} htb default 2\n\
         class add dev {dev} parent {HANDLE} classid 5241:1 htb rate {unlimited}\n\
         class add dev {dev} parent {HANDLE} classid 5241:2 htb rate {rate} ceil {rate}\n"
    );
    if let Some(l) = leaf_cmd {
        batch.push_str(&l);
    }
    for a in coordinator.iter().filter(|a| a.is_ipv4()) {
        batch.push_str(&format!(
            "filter add dev {dev} parent {HANDLE} protocol ip prio 1 u32 match ip dst {}/32 match ip dport {} 0xffff flowid 5241:1\n",
            a.ip(),
            a.port()
        ));
    }
    if let Err(e) = command("tc", &["-batch", "-"], Some(&batch)) {
        let _ = restore(dev, &kind, !default);
        return Err(format!("tc refused the change: {e}"));
    }
    let (now_kind, now_handle) = root(dev)?;
    if now_kind != "htb" || now_handle != HANDLE {
        let _ = restore(dev, &kind, !default);
        return Err(format!(
            "{dev}'s root is {now_kind} {now_handle} after applying"
        ));
    }
    Ok((
        undo,
        format!(
            "{dev}: root htb {HANDLE} (previous root {kind} {handle}), {what}; the coordinator session is unshaped"
        ),
    ))
}

/// Deletes Rampart's root and checks the previous kind is back.
pub fn restore(dev: &str, previous_kind: &str, forced: bool) -> Result<String, String> {
    let (kind, handle) = root(dev)?;
    if handle == HANDLE {
        command("tc", &["qdisc", "del", "dev", dev, "root"], None)?;
    }
    let (kind_after, handle_after) = root(dev)?;
    if handle_after == HANDLE {
        return Err(format!("{dev} still has Rampart's root qdisc"));
    }
    if forced {
        return Ok(format!(
            "{dev}: root qdisc back to the kernel default {kind_after} (the previous {previous_kind} was replaced by force)"
        ));
    }
    if kind_after != previous_kind {
        return Err(format!(
            "{dev}'s root qdisc is {kind_after} {handle_after}, not the previous {previous_kind} (was {kind} {handle} before revert)"
        ));
    }
    Ok(format!("{dev}: root qdisc back to {kind_after}"))
}
