//! hsm
