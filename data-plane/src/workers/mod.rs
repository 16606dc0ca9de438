//! Background work: the sweeper of expired rows and the outbox's delivery.

pub mod outbox;
pub mod sweeper;
