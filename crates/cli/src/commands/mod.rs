//! One module per subcommand.

pub mod agent;
pub mod budget;
pub mod debug;
pub mod front;
pub mod importance;
pub mod lrfind;
pub mod manage;
pub mod number;
pub mod progress;
pub mod refine;
pub mod repeat;
pub mod run;
pub mod server;
pub mod signals;
pub mod space;
pub mod sync;
pub mod tune;
pub mod ui;
pub mod validate;
