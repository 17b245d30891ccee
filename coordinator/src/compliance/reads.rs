//! Which facts a pack's Rego reads, so only those are converted for the engine.

/// The top-level input keys Rego sources read, or `None` when one uses `input` other than as
/// `input.<name>` or `object.get(input, "<name>", …)` (then the whole input is needed).
/// Comments are ignored.
pub(crate) fn input_reads(sources: &[(String, String)]) -> Option<Vec<String>> {
    let mut keys = std::collections::BTreeSet::new();
    for (_, text) in sources {
        for line in text.lines() {
            // String contents are masked (same length, so offsets still match `line`): words in
            // them are not code.
            let masked = mask_strings(line);
            let code = masked.split('#').next().unwrap_or_default();
            let mut offset = 0;
            while let Some(found) = code[offset..].find("input") {
                let at = offset + found;
                let before = code[..at].chars().next_back();
                let getter = code[..at].ends_with("object.get(");
                let after = &code[at + "input".len()..];
                offset = at + "input".len();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue; // part of another name, e.g. `my_input` or `data.input`
                }
                if after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue; // `inputs`, `input_x`
                }
                if getter && after.starts_with(", \"") {
                    let quoted = &line[offset + 3..];
                    let name: String = quoted
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name.is_empty() || !quoted[name.len()..].starts_with('"') {
                        return None;
                    }
                    keys.insert(name);
                    continue;
                }
                let name: String = after
                    .strip_prefix('.')?
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    return None;
                }
                keys.insert(name);
            }
        }
    }
    Some(keys.into_iter().collect())
}

/// `line` with the contents of its string literals ("…" and `…`) replaced by spaces.
fn mask_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        match quote {
            None => {
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
                out.push(c);
            }
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    out.push(c);
                    continue;
                }
                // One space per byte keeps offsets equal to the original line's.
                out.extend(std::iter::repeat_n(' ', c.len_utf8()));
            }
        }
    }
    out
}
