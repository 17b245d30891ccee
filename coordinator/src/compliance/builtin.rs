//! The built-in packs and libraries, compiled into the binary from `coordinator/packs/`.

/// The Rego files of a built-in folder, as (name, text).
macro_rules! builtin_files {
    ($dir:literal: $($file:literal),* $(,)?) => {
        &[$((
            concat!($dir, "/", $file),
            include_str!(concat!("../../packs/", $dir, "/", $file)),
        )),*]
    };
}

/// Built-in packs, compiled into the binary: manifest and Rego files.
pub(crate) const BUILTIN: &[(&str, &[(&str, &str)])] = &[
    (
        include_str!("../../packs/linux-baseline/pack.toml"),
        builtin_files!("linux-baseline": "lib.rego", "sshd.rego", "files.rego", "sysctl.rego", "system.rego"),
    ),
    (
        include_str!("../../packs/cis-debian-12/pack.toml"),
        builtin_files!("cis-debian-12": "recommendations.rego"),
    ),
    (
        include_str!("../../packs/cis-ubuntu-24.04/pack.toml"),
        builtin_files!("cis-ubuntu-24.04": "recommendations.rego"),
    ),
    (
        include_str!("../../packs/cis-rhel-9/pack.toml"),
        builtin_files!("cis-rhel-9": "recommendations.rego"),
    ),
];

/// Built-in libraries: Rego shared by built-in packs (`uses = ["name"]`).
const BUILTIN_LIBRARIES: &[(&str, &[(&str, &str)])] = &[(
    "cis-common",
    builtin_files!(
        "cis-common": "_lib.rego",
        "filesystems.rego",
        "system.rego",
        "services.rego",
        "network.rego",
        "ssh.rego",
        "access.rego",
        "logging.rego",
        "files.rego",
        "numbering.rego",
        "rhel.rego",
    ),
)];

/// The files of a built-in library, named as built-in files are.
pub(crate) fn builtin_library(name: &str) -> Result<Vec<(String, String)>, String> {
    BUILTIN_LIBRARIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, files)| {
            files
                .iter()
                .map(|(n, t)| (format!("builtin:{n}"), t.to_string()))
                .collect()
        })
        .ok_or_else(|| format!("there is no built-in library {name:?}"))
}
