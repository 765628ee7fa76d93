//! The membership decisions, one pure function per action (to be written).
