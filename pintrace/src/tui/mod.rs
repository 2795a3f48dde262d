//! `pintrace top` and `pintrace replay`: the live screen.
//!
//! `app` holds the view state and turns user intents into actions,
//! `keymap` maps keys to intents, `view` draws a frame from the app's
//! frozen `LiveSnapshot` (a pure function: no locks, no I/O, no model).
pub mod app;
pub mod keymap;
pub mod screen;
pub mod view;

pub use screen::RETAIN_EXITED_NS;
