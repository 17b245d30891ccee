//! The example model, the YAML writer, OTM and Threat Dragon, diagrams.

use std::collections::HashMap;

use super::{LINKED, model};
use crate::threat::{diagram, import, otm, parse_model, write};

#[test]
fn the_example_models_rampart_and_links_real_checks() {
    let text = include_str!("../../../../examples/threat-model.yaml");
    let m = parse_model("threat-model.yaml", text).unwrap();
    assert_eq!(m.name, "rampart");
    let pack = crate::compliance::Packs::builtin()
        .get("linux-baseline")
        .unwrap();
    let checks: Vec<String> = pack.checks.iter().map(|c| c.id.clone()).collect();
    for mit in &m.mitigations {
        for c in &mit.controls {
            assert_eq!(c.pack, "linux-baseline");
            assert!(
                checks.contains(&c.rule),
                "{} is not a linux-baseline check",
                c.rule
            );
        }
        for e in &mit.experiments {
            let path = format!(
                "{}/../examples/experiments/{e}.yaml",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path}"));
            let exp = crate::chaos::spec::experiment(&path, &text).unwrap();
            assert_eq!(&exp.name, e);
        }
    }
}

#[test]
fn yaml_writer_round_trips() {
    let m = model(LINKED);
    let text = write::yaml(&m, "header line\nsecond");
    assert!(text.starts_with("# header line\n# second\n"));
    assert_eq!(parse_model("again.yaml", &text).unwrap(), m);
    let example = parse_model("x", include_str!("../../../../examples/threat-model.yaml")).unwrap();
    assert_eq!(
        parse_model("x", &write::yaml(&example, "")).unwrap(),
        example
    );
}

/// The official OTM 0.2.0 schema (see tests/schemas/README.md).
const OTM_SCHEMA: &str = include_str!("../../../tests/schemas/otm-0.2.0.schema.json");

#[test]
fn otm_export_validates_against_the_schema_and_round_trips() {
    let schema: serde_json::Value = serde_json::from_str(OTM_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let example = parse_model("x", include_str!("../../../../examples/threat-model.yaml")).unwrap();
    for m in [example, model(LINKED)] {
        let doc = otm::export(&m);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let (back, notes) = otm::import(&doc.to_string()).unwrap();
        assert_eq!(back, m, "notes: {notes:?}");
    }
}

#[test]
fn otm_from_another_tool_imports_what_it_can() {
    let doc = serde_json::json!({
        "otmVersion": "0.2.0",
        "project": {"name": "Shop", "id": "shop"},
        "assets": [{"id": "a-1", "name": "Orders", "risk": {"confidentiality": 80, "integrity": 60, "availability": 30}}],
        "trustZones": [
            {"id": "tz internet", "name": "Internet", "risk": {"trustRating": 0}},
            {"id": "tz-app", "name": "App", "risk": {"trustRating": 70}}
        ],
        "components": [
            {"id": "c-1", "name": "Web shop", "type": "web-service", "parent": {"trustZone": "tz-app"},
             "threats": [{"threat": "th-1", "state": "exposed", "mitigations": [{"mitigation": "m-1", "state": "required"}]}]},
            {"id": "c-2", "name": "Orders DB", "type": "postgresql-database", "parent": {"trustZone": "tz-app"}, "assets": {"stored": ["a-1"]}},
            {"id": "c-3", "name": "Browser", "type": "actor", "parent": {"trustZone": "tz internet"}}
        ],
        "dataflows": [{"id": "df-1", "name": "orders", "source": "c-1", "destination": "c-2", "assets": ["a-1"]}],
        "threats": [{"id": "th-1", "name": "SQL injection", "categories": ["Tampering"], "risk": {"likelihood": 100, "impact": 50}}],
        "mitigations": [{"id": "m-1", "name": "Prepared statements", "riskReduction": 90}]
    });
    let (m, notes) = otm::import(&doc.to_string()).unwrap();
    assert_eq!(
        m.boundaries
            .iter()
            .map(|b| (b.id.as_str(), b.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![("internet", "internet"), ("tz-app", "network")]
    );
    assert_eq!(
        m.components[1].kind,
        crate::threat::model::ComponentType::Datastore
    );
    assert_eq!(m.actors[0].boundary.as_deref(), Some("internet"));
    assert_eq!(m.threats[0].stride, crate::threat::model::Stride::Tampering);
    assert_eq!(m.threats[0].factors.0[0], Some(9));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Prepared statements") && n.contains("no Rampart evidence")),
        "{notes:?}"
    );
    // What is written reads back as a valid model.
    parse_model("imported", &write::yaml(&m, "")).unwrap();
}

#[test]
fn threat_dragon_demo_imports_into_a_valid_model() {
    let text = include_str!("../../../tests/data/threat-dragon-v2-demo.json");
    let (m, notes) = import::threat_dragon(text).unwrap();
    assert_eq!(m.name, "Demo Threat Model");
    // The demo has 4 stores, 2 processes, 1 actor; one store and two flows are out of scope.
    assert_eq!(m.components.len(), 5, "{:#?}", m.components);
    assert_eq!(m.actors.len(), 1);
    assert_eq!(m.flows.len(), 8);
    assert!(m.threats.len() >= 10, "{}", m.threats.len());
    assert!(notes.iter().any(|n| n.contains("out of scope")));
    assert!(notes.iter().any(|n| n.contains("trust-boundary curve")));
    // The browser is on a public network: it sits in an internet boundary.
    assert_eq!(m.actors[0].boundary.as_deref(), Some("internet"));
    let yaml = write::yaml(&m, "imported");
    let back = parse_model("imported.yaml", &yaml).unwrap();
    assert_eq!(back, m);
    assert!(import::threat_dragon("{\"version\": \"1.0\"}").is_err());
    assert!(import::threat_dragon("not json").is_err());
}

#[test]
fn diagrams_nest_boundaries_and_draw_every_flow() {
    let m = parse_model("x", include_str!("../../../../examples/threat-model.yaml")).unwrap();
    let svg = diagram::svg(&m, None);
    // Well-formed XML, one group per boundary, node and flow.
    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut rects: HashMap<String, (f64, f64, f64, f64)> = HashMap::new();
    let (mut boundary, mut nodes, mut flows) = (None::<String>, 0, 0);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().to_string())
                };
                match (e.name().as_ref(), attr("class").as_deref()) {
                    (b"g", Some("boundary")) => boundary = attr("data-id"),
                    (b"g", Some(c)) if c.starts_with("node") => nodes += 1,
                    (b"g", Some("flow")) => flows += 1,
                    (b"rect", _) => {
                        if let Some(id) = boundary.take() {
                            let n = |k: &str| attr(k).unwrap().parse::<f64>().unwrap();
                            rects.insert(id, (n("x"), n("y"), n("width"), n("height")));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(rects.len(), m.boundaries.len());
    assert_eq!(nodes, m.components.len() + m.actors.len());
    assert_eq!(flows, m.flows.len());
    // A child boundary lies inside its parent.
    let (px, py, pw, ph) = rects["control"];
    let (cx, cy, cw, ch) = rects["coordinator-host"];
    assert!(cx > px && cy > py && cx + cw < px + pw && cy + ch < py + ph);
    let dot = diagram::dot(&m, None);
    assert!(dot.contains("subgraph \"cluster_control\""));
    assert!(dot.contains("\"operator\" -> \"coordinator\""));
}

/// The official OASIS SARIF 2.1.0 schema, with the fix to its two broken `language` patterns
/// that the sweep report's test explains.
#[test]
fn sarif_register_validates_against_the_official_schema() {
    use crate::report::fixture::{schema_errors, validator};
    const SCHEMA: &str = include_str!("../../../tests/schemas/sarif-schema-2.1.0.json");
    const BROKEN: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    let schema: serde_json::Value =
        serde_json::from_str(&SCHEMA.replace(BROKEN, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#)).unwrap();
    let m = model(LINKED);
    let a = crate::threat::assess::assess(&m, &super::evidence(&[], None));
    let doc = crate::threat::report::sarif(&a);
    let errors = schema_errors(&validator(&schema), &doc);
    assert!(errors.is_empty(), "{errors:#?}");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), a.risks.len());
    // Every result names a rule the driver lists, at its index.
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
}

/// Names come from model files people share: reports and diagrams escape them.
#[test]
fn reports_and_diagrams_escape_what_the_model_says() {
    let evil = "<script>alert(1)</script>";
    let m = model(&format!(
        "components:\n  - {{id: a, name: \"{evil}\", type: process, boundary: dmz, internet_facing: true, handles: [plain]}}\n"
    ));
    let a = crate::threat::assess::assess(&m, &super::evidence(&[], None));
    let html = crate::threat::report::html(&a, Some(&m));
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
    let svg = diagram::svg(&m, Some(&a));
    assert!(!svg.contains("<script"));
    let md = crate::threat::report::markdown(&a);
    assert!(md.contains("internet-facing-no-availability-mitigation@a"));
    let dot = diagram::dot(&m, Some(&a));
    assert!(dot.contains("label=\"<script>alert(1)</script>\""), "{dot}");
}
