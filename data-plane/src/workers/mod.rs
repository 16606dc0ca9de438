//! Background work: the sweeper of expired rows.

pub mod sweeper;
