//! Finance exports: what can be exported (`job`), the columns of each kind and how a row is
//! formatted (`rows`: decimal amounts, UTC and local times), and the encoders (`encode`: CSV,
//! XLSX, JSON Lines). Plain data and formatting: the export function does the reading and the
//! uploading.

pub mod decimal;
#[cfg(feature = "export")]
pub mod encode;
pub mod job;
pub mod rows;

pub use decimal::{decimal, parse_decimal};
pub use job::{ExportJob, ExportRequest, Format, JobStatus, Kind, PaymentTime, Period};
pub use rows::{Aging, Cell, Totals};
