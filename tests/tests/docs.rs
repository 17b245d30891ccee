//! The repository explains itself: every relative link in every Markdown file resolves to a file
//! inside the repository (people who clone Rampart can open it), and the README links to the
//! architecture document.

use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Parser, Tag};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" || name.starts_with("target-") {
            continue;
        }
        if p.is_dir() {
            markdown_files(&p, out);
        } else if name.ends_with(".md") {
            out.push(p);
        }
    }
}

/// Relative link targets in `text` (no scheme, no pure anchors), without their `#anchor`.
fn relative_links(text: &str) -> Vec<String> {
    Parser::new(text)
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .filter(|l| !l.contains(':') && !l.starts_with('#'))
        .map(|l| l.split('#').next().unwrap_or_default().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What is wrong with the links of one file.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = file.parent().unwrap();
    let root = root.canonicalize().unwrap();
    relative_links(&text)
        .into_iter()
        .filter_map(|link| {
            let target = dir.join(&link);
            match target.canonicalize() {
                Ok(t) if t.starts_with(&root) => None,
                Ok(_) => Some(format!(
                    "{}: {link} points outside the repository",
                    file.display()
                )),
                Err(_) => Some(format!("{}: {link} does not exist", file.display())),
            }
        })
        .collect()
}

#[test]
fn every_relative_markdown_link_resolves_inside_the_repository() {
    let root = repo_root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.len() >= 3, "found only {files:?}");
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(&root, f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_catches_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/a.md"), "x").unwrap();
    std::fs::write(dir.path().join("outside.md"), "x").unwrap();
    let readme = root.join("README.md");
    std::fs::write(
        &readme,
        "[ok](docs/a.md#part) [web](https://example.com) [anchor](#x)\n\
         [gone](docs/missing.md) [out](../outside.md) ![img](docs/nope.png)\n",
    )
    .unwrap();
    let broken = broken_links(&root, &readme);
    assert_eq!(broken.len(), 3, "{broken:?}");
    assert!(broken[0].contains("docs/missing.md does not exist"));
    assert!(broken[1].contains("outside the repository"));
}

#[test]
fn the_readme_links_the_architecture_document() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        relative_links(&readme)
            .iter()
            .any(|l| l == "docs/architecture.md"),
        "README.md must link docs/architecture.md"
    );
    let arch = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    for section in [
        "## Crates",
        "## The wire contract",
        "## Enrolment",
        "## A session",
        "## A sweep",
        "## A remediation",
        "## A fault and its revert",
        "## Safety rules for faults",
        "## How the tests build hosts",
    ] {
        assert!(
            arch.lines().any(|l| l == section),
            "docs/architecture.md lacks the section {section:?}"
        );
    }
}
