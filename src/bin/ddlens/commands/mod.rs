//! One module per command, as cargo's own `commands/`: arguments in, one library call out.

pub(crate) mod analyze;
pub(crate) mod demo;
pub(crate) mod distill;
pub(crate) mod doctor;
pub(crate) mod eval;
pub(crate) mod experts;
pub(crate) mod gather;
pub(crate) mod import;
pub(crate) mod rank;
pub(crate) mod report;
pub(crate) mod train;
