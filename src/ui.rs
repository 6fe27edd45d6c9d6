//! The web console: the app shell and routes, pages, components and charts.

pub mod app;
pub mod charts;
pub mod components;
#[cfg(feature = "hydrate")]
pub mod events;
pub mod pages;

use leptos::prelude::*;

/// Type-erases a view on the server only. Deeply nested view types make a page's server-side
/// render deep (a debug build overflowed a worker thread's stack) and slow to compile; in the
/// browser erasing costs WebAssembly size, and the HTML is the same either way.
#[cfg(feature = "ssr")]
pub fn erase(view: impl IntoView + 'static) -> AnyView {
    view.into_any()
}

/// In the browser, the view as it is.
#[cfg(not(feature = "ssr"))]
pub fn erase<V: IntoView>(view: V) -> V {
    view
}
