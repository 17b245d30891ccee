//! The boot loader: GRUB's configuration file (which one, its permissions, whether a superuser
//! password protects it), the kernel arguments every boot entry carries (grub.cfg `linux` lines,
//! or Boot Loader Specification entries' `options`), and the running kernel's arguments.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use rampart_proto::v1::BootFacts;

use super::{CollectResult, FactSource, conf};

const GRUB_CFG: [&str; 2] = ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

/// Arguments of a `linux` line: the words after the kernel image.
fn linux_args(line: &str) -> Option<Vec<String>> {
    let mut words = line.split_whitespace();
    matches!(words.next()?, "linux" | "linux16" | "linuxefi").then_some(())?;
    words.next()?;
    Some(words.map(String::from).collect())
}

pub fn collect(src: &FactSource) -> CollectResult<BootFacts> {
    let mut facts = BootFacts::default();
    let mut entries: Vec<Vec<String>> = Vec::new();
    if let Some(path) = GRUB_CFG
        .into_iter()
        .find(|p| src.path(p).is_ok_and(|p| p.is_file()))
    {
        facts.config_path = path.to_string();
        let md = src
            .path(path)
            .and_then(std::fs::metadata)
            .map_err(|e| format!("{path}: {e}"))?;
        facts.config_mode = md.permissions().mode() & 0o7777;
        facts.config_uid = md.uid();
        facts.config_gid = md.gid();
        let text = src.read(path).map_err(|e| format!("{path}: {e}"))?;
        let superusers = conf::lines(&text).any(|l| l.starts_with("set superusers"));
        let password_lines: Vec<&str> = conf::lines(&text)
            .filter(|l| l.starts_with("password_pbkdf2 ") || l.starts_with("password "))
            .collect();
        let dir = path.rsplit_once('/').map_or("", |d| d.0);
        // RHEL: grub2-setpassword writes the hash to user.cfg, which grub.cfg reads as a variable.
        let user_cfg = src
            .read_optional(format!("{dir}/user.cfg"))
            .ok()
            .flatten()
            .is_some_and(|t| conf::lines(&t).any(|l| l.starts_with("GRUB2_PASSWORD=grub.pbkdf2")));
        let literal = password_lines.iter().any(|l| !l.contains("${"));
        let from_user_cfg = user_cfg
            && password_lines
                .iter()
                .any(|l| l.contains("${GRUB2_PASSWORD}"));
        facts.password_set = superusers && (literal || from_user_cfg);
        entries.extend(conf::lines(&text).filter_map(linux_args));
    }
    for f in conf::conf_files(src, "/boot/loader/entries") {
        if let Ok(text) = src.read(&f) {
            let options: Vec<String> = conf::lines(&text)
                .filter_map(|l| l.strip_prefix("options"))
                .flat_map(|o| o.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect();
            entries.push(options);
        }
    }
    facts.entries = entries.len() as u32;
    if let Some(first) = entries.first() {
        let mut common: BTreeSet<String> = first.iter().cloned().collect();
        for e in &entries[1..] {
            let set: BTreeSet<String> = e.iter().cloned().collect();
            common = common.intersection(&set).cloned().collect();
        }
        facts.entry_args = common.into_iter().collect();
    }
    facts.running_args = src
        .read_optional("/proc/cmdline")
        .ok()
        .flatten()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn grub_password_permissions_and_common_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "boot/grub/grub.cfg",
            "set superusers=\"root\"\npassword_pbkdf2 root grub.pbkdf2.sha512.10000.AB\nmenuentry 'Debian' {\n\tlinux\t/vmlinuz-6.1 root=UUID=x ro quiet apparmor=1 security=apparmor audit=1\n}\nmenuentry 'rescue' {\n\tlinux /vmlinuz-6.1 root=UUID=x ro single apparmor=1 audit=1\n}\n",
        );
        std::fs::set_permissions(
            r.join("boot/grub/grub.cfg"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        write(
            r,
            "proc/cmdline",
            "BOOT_IMAGE=/vmlinuz-6.1 root=UUID=x ro quiet\n",
        );
        let b = collect(&FactSource::fixture(r)).unwrap();
        assert_eq!(b.config_path, "/boot/grub/grub.cfg");
        assert_eq!(b.config_mode, 0o600);
        assert!(b.password_set);
        assert_eq!(b.entries, 2);
        assert_eq!(b.entry_args, ["apparmor=1", "audit=1", "ro", "root=UUID=x"]);
        assert_eq!(b.running_args.len(), 4);

        // RHEL: BLS entries and a password in user.cfg.
        let rhel = tempfile::tempdir().unwrap();
        let r = rhel.path();
        write(
            r,
            "boot/grub2/grub.cfg",
            "set superusers=\"root\"\nexport superusers\npassword_pbkdf2 root ${GRUB2_PASSWORD}\nblscfg\n",
        );
        write(
            r,
            "boot/grub2/user.cfg",
            "GRUB2_PASSWORD=grub.pbkdf2.sha512.10000.CD\n",
        );
        write(
            r,
            "boot/loader/entries/a.conf",
            "title RHEL\nlinux /vmlinuz\noptions root=/dev/x ro audit=1\n",
        );
        let b = collect(&FactSource::fixture(r)).unwrap();
        assert!(b.password_set);
        assert_eq!(b.entry_args, ["audit=1", "ro", "root=/dev/x"]);
        // No superuser: no password, whatever else is written.
        write(r, "boot/grub2/grub.cfg", "blscfg\n");
        write(r, "boot/grub2/user.cfg", "");
        assert!(!collect(&FactSource::fixture(r)).unwrap().password_set);
    }
}
