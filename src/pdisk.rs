//! pdisk (in progress).
