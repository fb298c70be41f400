//! `stratuslab-user.cfg` (owned by the config work; placeholder so the tree builds).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{message}")]
    Invalid { message: String },
}

impl Classify for ConfigError {
    fn kind(&self) -> Kind {
        Kind::Config
    }
}
