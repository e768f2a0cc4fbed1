//! Charts as inline SVG: no script, nothing fetched when the page is viewed.

use std::fmt::Write as _;

use crate::analysis::overview::Bucket;
use chrono::NaiveDate;

/// Text for HTML (element content and quoted attributes), hidden
/// characters shown first ([`crate::render::escape::visible`]).
pub(super) fn esc(s: &str) -> String {
    crate::render::escape::visible(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const PALETTE: [&str; 7] = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#94a3b8"];

/// A stacked bar chart as inline SVG: one bar per day, one colour per series.
pub(super) fn stacked_bars(
    days: &[NaiveDate],
    bucket: Bucket,
    series: &[(String, Vec<u64>)],
    title: &str,
) -> String {
    let label = match bucket {
        Bucket::Day | Bucket::Week => "%m-%d",
        Bucket::Month => "%Y-%m",
        Bucket::Year => "%Y",
    };
    let (w, h, left, bottom, top) = (960.0, 240.0, 48.0, 28.0, 10.0);
    let totals: Vec<u64> = (0..days.len()).map(|i| series.iter().map(|(_, v)| v[i]).sum()).collect();
    let (max, lines) = nice_axis(totals.iter().copied().max().unwrap_or(0).max(1) as f64);
    let plot_h = h - bottom - top;
    let slot = (w - left) / days.len().max(1) as f64;
    let bar = (slot * 0.75).max(1.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    for k in 0..=lines {
        let v = max * k as f64 / lines as f64;
        let y = top + plot_h - plot_h * k as f64 / lines as f64;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#6b7280">{}</text>"##,
            left - 6.0,
            y + 4.0,
            v.round()
        );
    }
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for (j, (name, v)) in series.iter().enumerate() {
            if v[i] == 0 {
                continue;
            }
            let hgt = plot_h * v[i] as f64 / max;
            y -= hgt;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{hgt:.1}" fill="{}"><title>{d}: {} {}</title></rect>"#,
                PALETTE[j.min(PALETTE.len() - 1)],
                esc(name),
                v[i]
            );
        }
        let step = (days.len() / 12).max(1);
        if i % step == 0 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#6b7280">{}</text>"##,
                x + bar / 2.0,
                h - 8.0,
                d.format(label)
            );
        }
    }
    svg.push_str("</svg><div class=\"legend\">");
    for (j, (name, v)) in series.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<span><i style="background:{}"></i>{} ({})</span>"#,
            PALETTE[j.min(PALETTE.len() - 1)],
            esc(name),
            v.iter().sum::<u64>()
        );
    }
    svg.push_str("</div>");
    svg
}

/// An axis people can read: a step of 1, 2 or 5 times a power of ten,
/// at most five gridlines, the top at or above `v`. Returns (top, lines).
fn nice_axis(v: f64) -> (f64, usize) {
    let raw = (v / 5.0).max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p);
    let lines = ((v / step).ceil() as usize).max(1);
    (step * lines as f64, lines)
}
