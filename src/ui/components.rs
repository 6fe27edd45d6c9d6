//! Components shared by several pages.

pub mod async_view;
pub mod confirm;
pub mod environment_panel;
pub mod flash;
pub mod incident;
pub mod sign_form;
