//! The output layer: everything people and machines read. A format-neutral
//! [`Table`] and its sinks ([`table`]), one module per result to draw
//! ([`activity`], [`replay`], [`timeline`], [`siem`], [`overview`],
//! [`policy`]), the atomic output file ([`output`]), the progress bar
//! ([`progress`]) and colour ([`style`]). Renderers take results and plain
//! settings (width, colour), never command-line flags.

pub mod activity;
pub mod output;
pub mod overview;
pub mod policy;
pub mod progress;
pub mod replay;
pub mod siem;
pub mod store;
pub mod style;
pub mod table;
pub mod timeline;

pub use output::Output;
pub use table::Table;

/// Schema version of every machine-readable output; bumped on any change
/// that could break a consumer (see docs/output.md).
pub const SCHEMA_VERSION: u32 = 1;

/// A JSON document, pretty-printed, with a final newline.
pub fn write_json(out: &mut dyn std::io::Write, v: &serde_json::Value) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}
