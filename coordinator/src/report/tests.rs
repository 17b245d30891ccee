//! Tests of the report formats over the fixture sweep.

use super::fixture::{hosts, with_report};
use super::*;

/// The report in every format, by name.
fn all_formats(r: &SweepReport) -> [(&'static str, String); 5] {
    [
        ("json", json(r).to_string()),
        ("junit", junit(r)),
        ("sarif", sarif(r).to_string()),
        ("oscal", oscal(r).to_string()),
        ("markdown", markdown(r)),
    ]
}

#[test]
fn every_format_names_each_hosts_labels() {
    with_report(|r| {
        for (format, text) in all_formats(r) {
            for needle in ["team/owner", "web-ops", "staging"] {
                assert!(text.contains(needle), "{format} lacks {needle}");
            }
        }
        let j = json(r);
        assert_eq!(j["hosts"][0]["labels"]["env"], "prod");
        let waived = &j["hosts"][0]["results"][4];
        assert_eq!(
            (waived["status"].as_str(), waived["waiver"]["was"].as_str()),
            (Some("waived"), Some("fail"))
        );
        assert_eq!(waived["waiver"]["expires"], "2027-01-15T08:00:00.000Z");
        assert!(junit(r).contains(r#"<property name="label.team/owner" value="web-ops"/>"#));
        assert!(
            oscal(r)
                .to_string()
                .contains(r#""name":"label","value":"env=prod""#)
        );
    });
}

#[test]
fn every_format_shows_a_waived_result_with_its_reason_and_expiry() {
    with_report(|r| {
        for (format, text) in all_formats(r) {
            for needle in [
                "waiver-1234",
                "ticket NET-7",
                "2027-01-15T08:00:00.000Z",
                "alice",
            ] {
                assert!(text.contains(needle), "{format} lacks {needle}");
            }
        }
    });
}

#[test]
fn results_group_by_the_controls_their_checks_cite() {
    use super::fixture::checks;
    let mut checks = checks();
    // sshd-permit-root-login cites AC-6(2) and IA-2(5); sysctl-ip-forward SC-7 only.
    checks[0].nist = vec!["AC-6(2)".into(), "IA-2(5)".into()];
    checks[1].nist = vec!["SC-7".into()];
    checks[2].nist = vec!["AC-6(2)".into()];
    checks[3].nist = vec!["CM-7".into()];
    checks[4].nist.clear();
    checks[4].cis.clear();
    let got = framework_scores(&hosts(), &checks, Framework::Nist80053);
    let row = |c: &str| {
        got.iter()
            .find(|g| g.control == c)
            .unwrap_or_else(|| panic!("{c}: {got:#?}"))
    };
    let ac6 = row("AC-6(2)");
    assert_eq!(
        ac6.checks,
        ["sshd-max-auth-tries", "sshd-permit-root-login"]
    );
    assert_eq!((ac6.fail, ac6.error, ac6.state), (1, 1, "not-satisfied"));
    assert_eq!(
        row("IA-2(5)").fail,
        1,
        "a check counts under every control it cites"
    );
    assert_eq!((row("SC-7").pass, row("SC-7").state), (1, "satisfied"));
    assert_eq!(row("(none)").checks, ["sysctl-rp-filter"]);
    assert_eq!(row("(none)").state, "waived");
    assert_eq!(row("CM-7").state, "not-applicable");
    let cis = framework_scores(&hosts(), &checks, Framework::Cis);
    assert_eq!(
        cis.iter()
            .find(|g| g.control == "5.1.20")
            .unwrap()
            .checks
            .len(),
        4
    );
    // CIS Controls v8 safeguards group the same way.
    for c in checks.iter_mut().skip(2) {
        c.cis_controls.clear();
    }
    checks[1].cis_controls = vec!["4.8".into()];
    let safeguards = framework_scores(&hosts(), &checks, Framework::CisControls);
    let s54 = safeguards.iter().find(|g| g.control == "5.4").unwrap();
    assert_eq!(s54.checks, ["sshd-permit-root-login"]);
    assert_eq!(s54.state, "not-satisfied");
    assert_eq!(
        safeguards
            .iter()
            .find(|g| g.control == "4.8")
            .unwrap()
            .state,
        "satisfied"
    );
}

#[test]
fn group_scores_count_hosts_by_a_label() {
    let g = groups(&hosts(), "env");
    assert_eq!(g.len(), 2);
    let prod = &g[0];
    assert_eq!(
        (prod.value.as_str(), prod.hosts, prod.unreachable),
        ("prod", 1, 0)
    );
    assert_eq!((prod.pass, prod.fail, prod.error), (1, 1, 1));
    assert!((prod.score - 100.0 / 3.0).abs() < 1e-9);
    let staging = &g[1];
    assert_eq!(
        (staging.value.as_str(), staging.unreachable),
        ("staging", 1)
    );
    assert_eq!(staging.score, 100.0);
    let none = groups(&hosts(), "zone");
    assert_eq!(none.len(), 1);
    assert_eq!((none[0].value.as_str(), none[0].hosts), ("(none)", 2));
}

/// The JSON report written as it is serialized reads byte for byte as the value form printed
/// (keys sorted), and carries everything: hosts, every result with its evidence as JSON, the
/// waiver, the summary, and the views the CLI adds.
#[test]
fn the_json_report_written_directly_is_the_value_form_printed() {
    with_report(|r| {
        let direct = serde_json::to_string_pretty(&JsonReport::new(r)).unwrap();
        let value = json(r);
        assert_eq!(direct, serde_json::to_string_pretty(&value).unwrap());
        assert_eq!(value["sweep_id"], r.sweep_id);
        assert_eq!(value["hosts"].as_array().unwrap().len(), r.hosts.len());
        let results = value["hosts"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), r.hosts[0].results.len());
        assert!(
            results.iter().any(|v| v["evidence"].is_object()),
            "evidence is JSON, not a string"
        );
        assert!(results.iter().all(|v| v.get("micros").is_none()));
        assert_eq!(
            value["summary"]["hosts"],
            serde_json::json!(r.summary.hosts)
        );

        let mut with_views = JsonReport::new(r);
        with_views.groups = Some(serde_json::json!({"label": "env"}));
        with_views.framework = Some(serde_json::json!({"name": "nist-800-53"}));
        let mut expected = json(r);
        expected["groups"] = serde_json::json!({"label": "env"});
        expected["framework"] = serde_json::json!({"name": "nist-800-53"});
        assert_eq!(
            serde_json::to_string_pretty(&with_views).unwrap(),
            serde_json::to_string_pretty(&expected).unwrap()
        );
    });
}
