//! Unit tests of the engine through its own traits: a fake network that answers by amount, a
//! fake vault, a settable clock, and a redb store in a temp dir.
