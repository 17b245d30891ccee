//! Remediation actions as packs declare them (a check's `action` metadata) and as agents accept
//! them (typed messages). Packs validate their actions with this at load; remediation runs send
//! what it returns.

use rampart_proto::v1::{
    FileModeAction, KernelModuleAction, RemediationAction, SshdOptionAction, SysctlAction,
    UnitDisableAction, remediation_action,
};

/// Reads a check's `action` (from its Rego metadata) as the typed action agents accept.
pub fn parse_action(v: &serde_json::Value) -> Result<RemediationAction, String> {
    use remediation_action::Action;
    fn typed<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, String> {
        serde_json::from_value(v.clone()).map_err(|e| e.to_string())
    }
    let kind = v["kind"].as_str().unwrap_or_default();
    let action = match kind {
        "sysctl" => Action::Sysctl(typed::<SysctlAction>(v)?),
        "sshd_option" => Action::SshdOption(typed::<SshdOptionAction>(v)?),
        "file_mode" => Action::FileMode(typed::<FileModeAction>(v)?),
        "kernel_module" => Action::KernelModule(typed::<KernelModuleAction>(v)?),
        "unit_disable" => Action::UnitDisable(typed::<UnitDisableAction>(v)?),
        other => {
            return Err(format!(
                "unknown action kind {other:?}: expected sysctl, sshd_option, file_mode, kernel_module or unit_disable"
            ));
        }
    };
    Ok(RemediationAction {
        action: Some(action),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_baseline_action_parses_and_unknown_kinds_are_named() {
        let packs = crate::compliance::Packs::builtin();
        let pack = packs.get("linux-baseline").unwrap();
        let with_action: Vec<_> = pack.checks.iter().filter(|c| c.action.is_some()).collect();
        assert!(with_action.len() >= 35, "{}", with_action.len());
        for c in with_action {
            let a = parse_action(c.action.as_ref().unwrap()).unwrap();
            assert!(a.action.is_some(), "{}", c.id);
        }
        let shadow = pack
            .checks
            .iter()
            .find(|c| c.id == "file-etc-shadow")
            .unwrap();
        match parse_action(shadow.action.as_ref().unwrap())
            .unwrap()
            .action
        {
            Some(remediation_action::Action::FileMode(f)) => {
                assert_eq!((f.path.as_str(), f.mode.as_str()), ("/etc/shadow", "0640"));
                assert_eq!(
                    f.allowed_groups,
                    vec!["root".to_string(), "shadow".to_string()]
                );
            }
            other => panic!("{other:?}"),
        }
        let e = parse_action(&serde_json::json!({"kind": "rm_rf"})).unwrap_err();
        assert!(e.contains("unknown action kind \"rm_rf\""), "{e}");
    }
}
