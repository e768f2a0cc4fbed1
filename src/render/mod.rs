//! The output layer: everything people and machines read. A format-neutral
//! [`Table`] and its sinks ([`table`]), one module per result to draw
//! ([`activity`], [`replay`], [`timeline`], [`siem`], [`overview`],
//! [`policy`]), the atomic output file ([`output`]), the progress bar
//! ([`progress`]) and colour ([`style`]). Renderers take results and plain
//! settings (width, colour), never command-line flags.

pub(crate) mod activity;
pub(crate) mod escape;
pub(crate) mod output;
pub(crate) mod overview;
pub(crate) mod policy;
pub(crate) mod progress;
pub(crate) mod propose;
pub(crate) mod replay;
pub(crate) mod siem;
pub(crate) mod store;
pub(crate) mod style;
pub(crate) mod table;
pub(crate) mod timeline;

pub(crate) use output::Output;

/// Schema version of every machine-readable output; bumped on any change
/// that could break a consumer (see docs/output.md).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// A JSON document, pretty-printed, with a final newline.
pub(crate) fn write_json(out: &mut dyn std::io::Write, v: &serde_json::Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}
