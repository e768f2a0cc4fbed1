//! Synthetic sign-ins for samples, tests and benchmarks: a seeded
//! [`scenario`] and a writer per export [`formats`].

pub mod audit;
pub mod formats;
pub mod scenario;

pub use formats::{SynthFormat, Writer};
pub use scenario::Scenario;
