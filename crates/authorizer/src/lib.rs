//! authorizer
