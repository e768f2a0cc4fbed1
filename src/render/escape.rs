//! Every string a log carries was written by someone else: partner tenant
//! names, user principal names and app names are chosen by other tenants.
//! Each sink gets the escaping it needs, here and only here.
//!
//! - People (terminal tables, notes, errors, Markdown, HTML): control
//!   characters, bidirectional overrides and invisible separators are shown
//!   as `\u{..}` ([`visible`]), so a name can neither move the cursor, ring,
//!   recolour the terminal, nor reorder what is shown around it.
//! - Markdown: [`markdown`] also escapes what would start a heading, a
//!   table cell, a link or an image, or raw HTML.
//! - CSV for spreadsheets (`--csv-safe`): [`csv_safe`] keeps a cell from
//!   being read as a formula. Machine CSV stays exact by default: our own
//!   `replay` reads activity tables back.
//! - CEF: [`super::siem`] escapes its own specials after [`visible`].
//! - JSON is escaped by serde_json; HTML by the report's `esc`.

use std::borrow::Cow;

/// Whether `c` must not reach a person's screen as it is.
pub(crate) fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'                  // Arabic letter mark
            | '\u{200B}'                // zero width space
            | '\u{200E}' | '\u{200F}'   // left-to-right / right-to-left marks
            | '\u{2028}' | '\u{2029}'   // line and paragraph separators
            | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
            | '\u{2060}'                // word joiner
            | '\u{2066}'..='\u{2069}'   // bidi isolates
            | '\u{FEFF}'                // zero width no-break space
        )
}

/// `s` with every control, bidi and invisible character written as an
/// escape (`\n`, `\t`, `\r`, else `\u{1b}`). The result has none left, so
/// escaping twice changes nothing.
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Text for a Markdown paragraph or table cell (never the start of a
/// line): [`visible`], and a backslash before every character that could
/// open Markdown or HTML there: `<` (raw HTML such as `<img onerror>`, and
/// autolinks), `[` (links, and with `!` images that load from a remote
/// server), `|` (ending a table cell), `&` (entities), emphasis and code.
pub(crate) fn markdown(s: &str) -> String {
    let v = visible(s);
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | '<' | '&' | '|' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text as a Markdown code span, whatever backticks it holds: the fence
/// is one longer than its longest run of them (CommonMark's rule), and
/// nothing inside a code span is read as Markdown or HTML.
pub(crate) fn code_span(s: &str) -> String {
    let v = visible(s);
    let longest = v.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if v.starts_with('`') || v.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{v}{pad}{fence}")
}

/// A CSV cell a spreadsheet will not run: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'` (OWASP's advice for
/// CSV injection).
pub(crate) fn csv_safe(s: &str) -> Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_become_visible_escapes() {
        let hostile = "evil\u{1b}[31mred\u{7}\u{0}\r\n\u{202e}gnp.exe\u{2066}";
        let v = visible(hostile);
        assert_eq!(v, "evil\\u{1b}[31mred\\u{7}\\u{0}\\r\\n\\u{202e}gnp.exe\\u{2066}");
        assert!(!v.chars().any(hidden));
        assert_eq!(visible(&v), v, "escaping twice changes nothing");
        assert!(matches!(visible("Contoso Ltd – Zürich 東京"), Cow::Borrowed(_)));
    }

    #[test]
    fn markdown_cells_cannot_open_html_images_links_or_rows() {
        let m = markdown("x|y\n## h <img src=x onerror=alert(1)> ![i](https://e.example/i.png)");
        assert!(!m.contains('\n'));
        assert!(m.contains("x\\|y"));
        assert!(m.contains("\\<img"));
        assert!(m.contains("!\\[i](https://e.example/i.png)"), "{m}");
    }

    #[test]
    fn a_code_span_holds_any_backticks() {
        assert_eq!(code_span("a -> b"), "`a -> b`");
        assert_eq!(code_span("x `y` z"), "``x `y` z``");
        assert_eq!(code_span("`q`"), "`` `q` ``");
    }

    #[test]
    fn formulas_are_defused_and_the_rest_is_untouched() {
        for f in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_safe(f).starts_with('\''), "{f}");
        }
        assert_eq!(csv_safe("ann@contoso.example"), "ann@contoso.example");
    }
}
