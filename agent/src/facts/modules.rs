//! Kernel modules: which are loaded (`/proc/modules`), and which modprobe configuration blocks
//! (`blacklist`, or `install <module> /bin/true|/bin/false`).

use rampart_proto::v1::KernelModules;

use super::{CollectResult, FactSource, io_err};

const MODPROBE_DIRS: [&str; 4] = [
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
];

pub fn collect(src: &FactSource) -> CollectResult<KernelModules> {
    let loaded = src
        .read_optional("/proc/modules")
        .map_err(io_err("/proc/modules"))?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let mut m = KernelModules {
        loaded,
        ..Default::default()
    };
    for dir in MODPROBE_DIRS {
        let files = src.list(dir);
        for f in files.iter().filter(|f| f.ends_with(".conf")) {
            let text = src.read(f).unwrap_or_default();
            for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["blacklist", module, ..] => m.blacklisted.push(module.replace('-', "_")),
                    ["install", module, cmd, ..]
                        if matches!(
                            *cmd,
                            "/bin/true" | "/bin/false" | "/usr/bin/true" | "/usr/bin/false"
                        ) =>
                    {
                        m.install_disabled.push(module.replace('-', "_"))
                    }
                    _ => {}
                }
            }
        }
    }
    m.blacklisted.sort();
    m.blacklisted.dedup();
    m.install_disabled.sort();
    m.install_disabled.dedup();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn blacklists_and_install_overrides() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "proc/modules",
            "ext4 1 0 - Live 0x0\nsquashfs 2 0 - Live 0x0\n",
        );
        write(
            dir.path(),
            "etc/modprobe.d/cis.conf",
            "# CIS\ninstall cramfs /bin/true\ninstall udf /bin/false\nblacklist hfsplus\ninstall usb-storage /sbin/modprobe --ignore-install usb-storage\n",
        );
        write(
            dir.path(),
            "etc/modprobe.d/ignored.txt",
            "blacklist squashfs\n",
        );
        let m = collect(&FactSource::fixture(dir.path())).unwrap();
        assert_eq!(m.loaded, ["ext4", "squashfs"]);
        assert_eq!(m.install_disabled, ["cramfs", "udf"]);
        assert_eq!(m.blacklisted, ["hfsplus"]);
    }
}
