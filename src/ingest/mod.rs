//! Reading sign-in and audit exports into canonical records.
//!
//! One pipeline serves both kinds of record ([`RecordKind`]: [`SignIns`],
//! [`AuditEvents`]); only the last step, turning one record into canonical
//! form, differs. Data flows: [`source`] opens and decodes each input, [`detect`] decides
//! JSON or CSV from its first bytes, [`framing`] (JSON) or the CSV reader
//! cuts it into batches of records on a reader thread, the batches are
//! parsed in parallel ([`json`], [`csv_exports`] then [`normalize`]), and the
//! results are handed to the caller strictly in input order. Memory is
//! bounded by the number of batches in flight, whatever the input size.

//!
//! The module, file by file: [`kinds`] (the record kinds and input
//! formats), [`source`] (opening inputs: files, folders, stdin, gzip,
//! encodings), [`detect`] (JSON or CSV), [`split`] (the reader thread that
//! cuts inputs into batches: [`framing`] for JSON, [`csv_records`] for CSV),
//! [`parallel`] (batches parsed in parallel, results in input order, errors
//! and rejects), then per record [`json`] or [`csv_exports`], [`raw`] (the
//! loose shape), [`lenient`] (type drift between exports), [`dates`],
//! [`normalize`] (to the canonical sign-in) and [`audit`] (to the canonical
//! audit event). [`activity_table`] reads back what `activity` writes.

pub(crate) mod activity_table;
mod audit;
mod csv_exports;
mod csv_records;
mod dates;
mod detect;
mod framing;
mod json;
mod kinds;
mod lenient;
mod lines;
mod normalize;
mod parallel;
mod raw;
pub(crate) mod source;
mod split;

pub use dates::DateOrder;
pub use kinds::{AuditEvents, BadRow, InputFormat, Parsed, RecordKind, SignIns};
pub use normalize::{Context, FieldError};
pub use parallel::{read_audit, read_records, read_signins, Options, Progress, RecordError};
pub use source::Input;
