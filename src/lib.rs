//! STI Rollout Console: the library shared by the server binary and the WebAssembly front end.
//!
//! Layers, each depending only on those after it: `ui → api → engine/db → domain`.
//! `server` and `cli` wire them together on the server. See `docs/ARCHITECTURE.md`.

// Leptos views are deeply nested types; the environment page needs more than the default 128.
#![recursion_limit = "256"]
pub mod api;
pub mod domain;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod engine;
#[cfg(feature = "ssr")]
pub mod server;

/// The browser's entry point. Pages are server-rendered HTML; only their islands (the live and
/// interactive parts, `#[island]`) are hydrated, by Leptos' script right after this returns.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // end-to-end tests wait for this before they click. The islands hydrate in the microtasks
    // that follow this call; a zero timeout runs after them.
    leptos::prelude::set_timeout(
        || {
            if let Some(body) = leptos::prelude::document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}
