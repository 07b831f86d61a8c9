//! The checks, one public generic function each.

mod capacity;
mod data;
mod lifecycle;
mod looping;
mod net;
mod time;

pub use capacity::*;
pub use data::*;
pub use lifecycle::*;
pub use looping::*;
pub use net::*;
pub use time::*;
