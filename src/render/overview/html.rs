//! The overview as one self-contained HTML page.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;

use super::svg::{esc, stacked_bars};
use super::{headline, is_count, period, sections, Grid};
use crate::analysis::overview::Overview;
use crate::render::write_when_full;

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111827;margin:0;background:#f8fafc}
main{max-width:1040px;margin:0 auto;padding:24px}h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}
.sub{color:#6b7280;margin:0 0 16px}.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}.card b{display:block;font-size:22px}
.card span{color:#6b7280;font-size:12px}section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;margin-top:14px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f1f5f9}
th{color:#374151;font-weight:600;background:#f8fafc}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;color:#374151;margin-top:4px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
p.note{color:#6b7280;margin:4px 0 8px}footer{color:#9ca3af;font-size:12px;margin-top:24px}";

/// Writes the overview to `w`, a section at a time: the lists of partners
/// are read as they are written, never held whole.
pub(crate) fn html(o: Overview, w: &mut dyn Write) -> Result<()> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main><h1>{}</h1><p class=\"sub\">{}</p><div class=\"cards\">",
        esc(&o.title),
        esc(&o.title),
        esc(&period(&o))
    );
    for (k, v) in headline(&o) {
        let _ = write!(h, "<div class=\"card\"><b>{}</b><span>{}</span></div>", esc(&v), esc(k));
    }
    h.push_str("</div>");
    if !o.days.is_empty() {
        let noun = o.bucket.noun();
        let _ = write!(
            h,
            "<section><h2>Sign-ins per {noun} by partner</h2>{}</section><section><h2>Inbound and outbound per {noun}</h2>{}</section>",
            stacked_bars(&o.days, o.bucket, &o.per_partner, &format!("Cross-tenant sign-ins per {noun} by partner")),
            stacked_bars(&o.days, o.bucket, &o.per_direction, &format!("Cross-tenant sign-ins per {noun} by direction"))
        );
    }
    for (title, intro, grid) in sections(o) {
        let _ = write!(h, "<section><h2>{}</h2>", esc(&title));
        if !intro.is_empty() {
            let _ = write!(h, "<p class=\"note\">{}</p>", esc(&intro));
        }
        if let Some(Grid { headers, rows }) = grid {
            let mut rows = rows.peekable();
            if rows.peek().is_none() {
                h.push_str("<p class=\"note\">None.</p>");
            } else {
                let class = |i: usize| if is_count(headers[i]) { " class=\"n\"" } else { "" };
                h.push_str("<table><thead><tr>");
                for (i, c) in headers.iter().enumerate() {
                    let _ = write!(h, "<th{}>{}</th>", class(i), esc(c));
                }
                h.push_str("</tr></thead><tbody>");
                for r in rows {
                    h.push_str("<tr>");
                    for (i, c) in r?.iter().enumerate() {
                        let _ = write!(h, "<td{}>{}</td>", class(i), esc(c));
                    }
                    h.push_str("</tr>");
                    write_when_full(&mut h, w)?;
                }
                h.push_str("</tbody></table>");
            }
        }
        h.push_str("</section>");
    }
    let _ = writeln!(
        h,
        "<footer>xtenant {} · report schema {}</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        crate::render::SCHEMA_VERSION
    );
    w.write_all(h.as_bytes())?;
    Ok(())
}
