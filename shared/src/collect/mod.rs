//! Deciding who is contacted, when, on which channel and with what words.

pub mod book;
pub mod decide;
pub mod strategy;
pub mod templates;
pub mod window;

pub use book::{Bucket, Segment, StrategyBook};
pub use decide::{Contact, Decider, Verdict};
pub use strategy::{EndAction, Step, Strategy};
