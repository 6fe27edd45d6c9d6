//! Components shared by several pages.

pub mod async_view;
pub mod environment_panel;
